// Original file: proto/eddy/control/v1/control.proto

import type { JobCounters as _eddy_control_v1_JobCounters, JobCounters__Output as _eddy_control_v1_JobCounters__Output } from '../../../eddy/control/v1/JobCounters';
import type { Long } from '@grpc/proto-loader';

export interface Heartbeat {
  'workerId'?: (string);
  'sentAtUnixMs'?: (number | string | Long);
  'jobs'?: (_eddy_control_v1_JobCounters)[];
  'runningJobs'?: (string)[];
  'stateBytes'?: (number | string | Long);
  'rssBytes'?: (number | string | Long);
  'cpuCores'?: (number | string);
  'channelPublicKey'?: (Buffer | Uint8Array | string);
  'servingAddress'?: (string);
}

export interface Heartbeat__Output {
  'workerId': (string);
  'sentAtUnixMs': (number);
  'jobs': (_eddy_control_v1_JobCounters__Output)[];
  'runningJobs': (string)[];
  'stateBytes': (number);
  'rssBytes': (number);
  'cpuCores': (number);
  'channelPublicKey': (Buffer);
  'servingAddress': (string);
}

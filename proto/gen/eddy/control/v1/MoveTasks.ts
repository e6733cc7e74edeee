// Original file: proto/eddy/control/v1/control.proto

import type { KeyGroupRange as _eddy_control_v1_KeyGroupRange, KeyGroupRange__Output as _eddy_control_v1_KeyGroupRange__Output } from '../../../eddy/control/v1/KeyGroupRange';
import type { Long } from '@grpc/proto-loader';

export interface MoveTasks {
  'jobId'?: (string);
  'epoch'?: (number | string | Long);
  'checkpointId'?: (number | string | Long);
  'keyGroups'?: (_eddy_control_v1_KeyGroupRange)[];
  'sourceSplits'?: (number)[];
  'workers'?: (string)[];
  'movedSplits'?: (number)[];
  'splitSenders'?: (string)[];
  'previousWorkers'?: (string)[];
  'previousSplitSenders'?: (string)[];
}

export interface MoveTasks__Output {
  'jobId': (string);
  'epoch': (number);
  'checkpointId': (number);
  'keyGroups': (_eddy_control_v1_KeyGroupRange__Output)[];
  'sourceSplits': (number)[];
  'workers': (string)[];
  'movedSplits': (number)[];
  'splitSenders': (string)[];
  'previousWorkers': (string)[];
  'previousSplitSenders': (string)[];
}

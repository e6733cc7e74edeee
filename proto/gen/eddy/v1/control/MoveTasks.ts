// Original file: proto/eddy/v1/control.proto

import type { KeyGroupRange as _eddy_v1_control_KeyGroupRange, KeyGroupRange__Output as _eddy_v1_control_KeyGroupRange__Output } from '../../../eddy/v1/control/KeyGroupRange';
import type { Long } from '@grpc/proto-loader';

export interface MoveTasks {
  'jobId'?: (string);
  'epoch'?: (number | string | Long);
  'checkpointId'?: (number | string | Long);
  'keyGroups'?: (_eddy_v1_control_KeyGroupRange)[];
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
  'keyGroups': (_eddy_v1_control_KeyGroupRange__Output)[];
  'sourceSplits': (number)[];
  'workers': (string)[];
  'movedSplits': (number)[];
  'splitSenders': (string)[];
  'previousWorkers': (string)[];
  'previousSplitSenders': (string)[];
}

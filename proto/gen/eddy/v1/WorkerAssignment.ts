// Original file: proto/eddy/v1/cluster.proto

import type { KeyGroupRange as _eddy_v1_KeyGroupRange, KeyGroupRange__Output as _eddy_v1_KeyGroupRange__Output } from '../../eddy/v1/KeyGroupRange';
import type { Long } from '@grpc/proto-loader';

export interface WorkerAssignment {
  'jobId'?: (string);
  'keyGroups'?: (_eddy_v1_KeyGroupRange)[];
  'sourceSplits'?: (number)[];
  'epoch'?: (number | string | Long);
}

export interface WorkerAssignment__Output {
  'jobId': (string);
  'keyGroups': (_eddy_v1_KeyGroupRange__Output)[];
  'sourceSplits': (number)[];
  'epoch': (string);
}

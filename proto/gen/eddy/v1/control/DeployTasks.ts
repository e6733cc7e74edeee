// Original file: proto/eddy/v1/control.proto

import type { KeyGroupRange as _eddy_v1_control_KeyGroupRange, KeyGroupRange__Output as _eddy_v1_control_KeyGroupRange__Output } from '../../../eddy/v1/control/KeyGroupRange';
import type { Long } from '@grpc/proto-loader';

export interface DeployTasks {
  'jobId'?: (string);
  'manifestJson'?: (string);
  'bundleSha256'?: (string);
  'bundleKey'?: (string);
  'epoch'?: (number | string | Long);
  'keyGroups'?: (_eddy_v1_control_KeyGroupRange)[];
  'sourceSplits'?: (number)[];
}

export interface DeployTasks__Output {
  'jobId': (string);
  'manifestJson': (string);
  'bundleSha256': (string);
  'bundleKey': (string);
  'epoch': (string);
  'keyGroups': (_eddy_v1_control_KeyGroupRange__Output)[];
  'sourceSplits': (number)[];
}

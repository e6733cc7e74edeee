// Original file: proto/eddy/v1/control.proto

import type { KeyGroupRange as _eddy_v1_control_KeyGroupRange, KeyGroupRange__Output as _eddy_v1_control_KeyGroupRange__Output } from '../../../eddy/v1/control/KeyGroupRange';
import type { RestoreFrom as _eddy_v1_control_RestoreFrom, RestoreFrom__Output as _eddy_v1_control_RestoreFrom__Output } from '../../../eddy/v1/control/RestoreFrom';
import type { SourcePosition as _eddy_v1_control_SourcePosition, SourcePosition__Output as _eddy_v1_control_SourcePosition__Output } from '../../../eddy/v1/control/SourcePosition';
import type { SkippedRecord as _eddy_v1_control_SkippedRecord, SkippedRecord__Output as _eddy_v1_control_SkippedRecord__Output } from '../../../eddy/v1/control/SkippedRecord';
import type { Long } from '@grpc/proto-loader';

export interface DeployTasks {
  'jobId'?: (string);
  'manifestJson'?: (string);
  'bundleSha256'?: (string);
  'bundleKey'?: (string);
  'epoch'?: (number | string | Long);
  'keyGroups'?: (_eddy_v1_control_KeyGroupRange)[];
  'sourceSplits'?: (number)[];
  'workers'?: (string)[];
  'restore'?: (_eddy_v1_control_RestoreFrom | null);
  'startPositions'?: (_eddy_v1_control_SourcePosition)[];
  'checkpointIntervalMs'?: (number);
  'skippedRecords'?: (_eddy_v1_control_SkippedRecord)[];
  'sealedChannelKey'?: (Buffer | Uint8Array | string);
}

export interface DeployTasks__Output {
  'jobId': (string);
  'manifestJson': (string);
  'bundleSha256': (string);
  'bundleKey': (string);
  'epoch': (number);
  'keyGroups': (_eddy_v1_control_KeyGroupRange__Output)[];
  'sourceSplits': (number)[];
  'workers': (string)[];
  'restore': (_eddy_v1_control_RestoreFrom__Output | null);
  'startPositions': (_eddy_v1_control_SourcePosition__Output)[];
  'checkpointIntervalMs': (number);
  'skippedRecords': (_eddy_v1_control_SkippedRecord__Output)[];
  'sealedChannelKey': (Buffer);
}

// Original file: proto/eddy/control/v1/control.proto

import type { KeyGroupRange as _eddy_control_v1_KeyGroupRange, KeyGroupRange__Output as _eddy_control_v1_KeyGroupRange__Output } from '../../../eddy/control/v1/KeyGroupRange';
import type { RestoreFrom as _eddy_control_v1_RestoreFrom, RestoreFrom__Output as _eddy_control_v1_RestoreFrom__Output } from '../../../eddy/control/v1/RestoreFrom';
import type { SourcePosition as _eddy_control_v1_SourcePosition, SourcePosition__Output as _eddy_control_v1_SourcePosition__Output } from '../../../eddy/control/v1/SourcePosition';
import type { SkippedRecord as _eddy_control_v1_SkippedRecord, SkippedRecord__Output as _eddy_control_v1_SkippedRecord__Output } from '../../../eddy/control/v1/SkippedRecord';
import type { Long } from '@grpc/proto-loader';

export interface DeployTasks {
  'jobId'?: (string);
  'manifestJson'?: (string);
  'bundleSha256'?: (string);
  'bundleKey'?: (string);
  'epoch'?: (number | string | Long);
  'keyGroups'?: (_eddy_control_v1_KeyGroupRange)[];
  'sourceSplits'?: (number)[];
  'workers'?: (string)[];
  'restore'?: (_eddy_control_v1_RestoreFrom | null);
  'startPositions'?: (_eddy_control_v1_SourcePosition)[];
  'checkpointIntervalMs'?: (number);
  'skippedRecords'?: (_eddy_control_v1_SkippedRecord)[];
  'sealedChannelKey'?: (Buffer | Uint8Array | string);
}

export interface DeployTasks__Output {
  'jobId': (string);
  'manifestJson': (string);
  'bundleSha256': (string);
  'bundleKey': (string);
  'epoch': (number);
  'keyGroups': (_eddy_control_v1_KeyGroupRange__Output)[];
  'sourceSplits': (number)[];
  'workers': (string)[];
  'restore': (_eddy_control_v1_RestoreFrom__Output | null);
  'startPositions': (_eddy_control_v1_SourcePosition__Output)[];
  'checkpointIntervalMs': (number);
  'skippedRecords': (_eddy_control_v1_SkippedRecord__Output)[];
  'sealedChannelKey': (Buffer);
}

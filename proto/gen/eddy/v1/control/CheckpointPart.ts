// Original file: proto/eddy/v1/control.proto

import type { DeltaRef as _eddy_v1_control_DeltaRef, DeltaRef__Output as _eddy_v1_control_DeltaRef__Output } from '../../../eddy/v1/control/DeltaRef';
import type { FileCommit as _eddy_v1_control_FileCommit, FileCommit__Output as _eddy_v1_control_FileCommit__Output } from '../../../eddy/v1/control/FileCommit';
import type { StageCounters as _eddy_v1_control_StageCounters, StageCounters__Output as _eddy_v1_control_StageCounters__Output } from '../../../eddy/v1/control/StageCounters';
import type { Long } from '@grpc/proto-loader';

export interface CheckpointPart {
  'checkpointId'?: (number | string | Long);
  'deltas'?: (_eddy_v1_control_DeltaRef)[];
  'outputKey'?: (string);
  'outputCount'?: (number);
  'bases'?: (_eddy_v1_control_DeltaRef)[];
  'files'?: (_eddy_v1_control_FileCommit)[];
  'counters'?: (_eddy_v1_control_StageCounters)[];
}

export interface CheckpointPart__Output {
  'checkpointId': (number);
  'deltas': (_eddy_v1_control_DeltaRef__Output)[];
  'outputKey': (string);
  'outputCount': (number);
  'bases': (_eddy_v1_control_DeltaRef__Output)[];
  'files': (_eddy_v1_control_FileCommit__Output)[];
  'counters': (_eddy_v1_control_StageCounters__Output)[];
}

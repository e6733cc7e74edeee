// Original file: proto/eddy/control/v1/control.proto

import type { DeltaRef as _eddy_control_v1_DeltaRef, DeltaRef__Output as _eddy_control_v1_DeltaRef__Output } from '../../../eddy/control/v1/DeltaRef';
import type { FileCommit as _eddy_control_v1_FileCommit, FileCommit__Output as _eddy_control_v1_FileCommit__Output } from '../../../eddy/control/v1/FileCommit';
import type { StageCounters as _eddy_control_v1_StageCounters, StageCounters__Output as _eddy_control_v1_StageCounters__Output } from '../../../eddy/control/v1/StageCounters';
import type { Long } from '@grpc/proto-loader';

export interface CheckpointPart {
  'checkpointId'?: (number | string | Long);
  'deltas'?: (_eddy_control_v1_DeltaRef)[];
  'outputKey'?: (string);
  'outputCount'?: (number);
  'bases'?: (_eddy_control_v1_DeltaRef)[];
  'files'?: (_eddy_control_v1_FileCommit)[];
  'counters'?: (_eddy_control_v1_StageCounters)[];
}

export interface CheckpointPart__Output {
  'checkpointId': (number);
  'deltas': (_eddy_control_v1_DeltaRef__Output)[];
  'outputKey': (string);
  'outputCount': (number);
  'bases': (_eddy_control_v1_DeltaRef__Output)[];
  'files': (_eddy_control_v1_FileCommit__Output)[];
  'counters': (_eddy_control_v1_StageCounters__Output)[];
}

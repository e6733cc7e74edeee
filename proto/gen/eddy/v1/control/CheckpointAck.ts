// Original file: proto/eddy/v1/control.proto

import type { SourcePosition as _eddy_v1_control_SourcePosition, SourcePosition__Output as _eddy_v1_control_SourcePosition__Output } from '../../../eddy/v1/control/SourcePosition';
import type { CheckpointPart as _eddy_v1_control_CheckpointPart, CheckpointPart__Output as _eddy_v1_control_CheckpointPart__Output } from '../../../eddy/v1/control/CheckpointPart';
import type { Long } from '@grpc/proto-loader';

export interface CheckpointAck {
  'jobId'?: (string);
  'checkpointId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'workerId'?: (string);
  'sources'?: (_eddy_v1_control_SourcePosition)[];
  'parts'?: (_eddy_v1_control_CheckpointPart)[];
  'error'?: (string);
}

export interface CheckpointAck__Output {
  'jobId': (string);
  'checkpointId': (number);
  'epoch': (number);
  'workerId': (string);
  'sources': (_eddy_v1_control_SourcePosition__Output)[];
  'parts': (_eddy_v1_control_CheckpointPart__Output)[];
  'error': (string);
}

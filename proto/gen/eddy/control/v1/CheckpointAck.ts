// Original file: proto/eddy/control/v1/control.proto

import type { SourcePosition as _eddy_control_v1_SourcePosition, SourcePosition__Output as _eddy_control_v1_SourcePosition__Output } from '../../../eddy/control/v1/SourcePosition';
import type { CheckpointPart as _eddy_control_v1_CheckpointPart, CheckpointPart__Output as _eddy_control_v1_CheckpointPart__Output } from '../../../eddy/control/v1/CheckpointPart';
import type { Long } from '@grpc/proto-loader';

export interface CheckpointAck {
  'jobId'?: (string);
  'checkpointId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'workerId'?: (string);
  'sources'?: (_eddy_control_v1_SourcePosition)[];
  'parts'?: (_eddy_control_v1_CheckpointPart)[];
  'error'?: (string);
}

export interface CheckpointAck__Output {
  'jobId': (string);
  'checkpointId': (number);
  'epoch': (number);
  'workerId': (string);
  'sources': (_eddy_control_v1_SourcePosition__Output)[];
  'parts': (_eddy_control_v1_CheckpointPart__Output)[];
  'error': (string);
}

// Original file: proto/eddy/v1/control.proto

import type { SourcePosition as _eddy_v1_control_SourcePosition, SourcePosition__Output as _eddy_v1_control_SourcePosition__Output } from '../../../eddy/v1/control/SourcePosition';
import type { Long } from '@grpc/proto-loader';

export interface CheckpointComplete {
  'jobId'?: (string);
  'checkpointId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'sources'?: (_eddy_v1_control_SourcePosition)[];
}

export interface CheckpointComplete__Output {
  'jobId': (string);
  'checkpointId': (number);
  'epoch': (number);
  'sources': (_eddy_v1_control_SourcePosition__Output)[];
}

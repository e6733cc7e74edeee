// Original file: proto/eddy/control/v1/control.proto

import type { SourcePosition as _eddy_control_v1_SourcePosition, SourcePosition__Output as _eddy_control_v1_SourcePosition__Output } from '../../../eddy/control/v1/SourcePosition';
import type { Long } from '@grpc/proto-loader';

export interface CheckpointComplete {
  'jobId'?: (string);
  'checkpointId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'sources'?: (_eddy_control_v1_SourcePosition)[];
}

export interface CheckpointComplete__Output {
  'jobId': (string);
  'checkpointId': (number);
  'epoch': (number);
  'sources': (_eddy_control_v1_SourcePosition__Output)[];
}

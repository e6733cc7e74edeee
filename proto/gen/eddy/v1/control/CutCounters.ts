// Original file: proto/eddy/v1/control.proto

import type { StageCounters as _eddy_v1_control_StageCounters, StageCounters__Output as _eddy_v1_control_StageCounters__Output } from '../../../eddy/v1/control/StageCounters';
import type { Long } from '@grpc/proto-loader';

export interface CutCounters {
  'checkpointId'?: (number | string | Long);
  'stages'?: (_eddy_v1_control_StageCounters)[];
}

export interface CutCounters__Output {
  'checkpointId': (number);
  'stages': (_eddy_v1_control_StageCounters__Output)[];
}

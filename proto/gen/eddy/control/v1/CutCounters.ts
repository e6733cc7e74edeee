// Original file: proto/eddy/control/v1/control.proto

import type { StageCounters as _eddy_control_v1_StageCounters, StageCounters__Output as _eddy_control_v1_StageCounters__Output } from '../../../eddy/control/v1/StageCounters';
import type { Long } from '@grpc/proto-loader';

export interface CutCounters {
  'checkpointId'?: (number | string | Long);
  'stages'?: (_eddy_control_v1_StageCounters)[];
}

export interface CutCounters__Output {
  'checkpointId': (number);
  'stages': (_eddy_control_v1_StageCounters__Output)[];
}

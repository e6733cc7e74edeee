// Original file: proto/eddy/v1/control.proto

import type { StageCounters as _eddy_v1_control_StageCounters, StageCounters__Output as _eddy_v1_control_StageCounters__Output } from '../../../eddy/v1/control/StageCounters';

export interface JobCounters {
  'jobId'?: (string);
  'stages'?: (_eddy_v1_control_StageCounters)[];
}

export interface JobCounters__Output {
  'jobId': (string);
  'stages': (_eddy_v1_control_StageCounters__Output)[];
}

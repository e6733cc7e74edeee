// Original file: proto/eddy/control/v1/control.proto

import type { StageCounters as _eddy_control_v1_StageCounters, StageCounters__Output as _eddy_control_v1_StageCounters__Output } from '../../../eddy/control/v1/StageCounters';
import type { CutCounters as _eddy_control_v1_CutCounters, CutCounters__Output as _eddy_control_v1_CutCounters__Output } from '../../../eddy/control/v1/CutCounters';
import type { Long } from '@grpc/proto-loader';

export interface JobCounters {
  'jobId'?: (string);
  'stages'?: (_eddy_control_v1_StageCounters)[];
  'epoch'?: (number | string | Long);
  'cuts'?: (_eddy_control_v1_CutCounters)[];
}

export interface JobCounters__Output {
  'jobId': (string);
  'stages': (_eddy_control_v1_StageCounters__Output)[];
  'epoch': (number);
  'cuts': (_eddy_control_v1_CutCounters__Output)[];
}

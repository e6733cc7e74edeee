// Original file: proto/eddy/v1/control.proto

import type { StageCounters as _eddy_v1_control_StageCounters, StageCounters__Output as _eddy_v1_control_StageCounters__Output } from '../../../eddy/v1/control/StageCounters';
import type { CutCounters as _eddy_v1_control_CutCounters, CutCounters__Output as _eddy_v1_control_CutCounters__Output } from '../../../eddy/v1/control/CutCounters';
import type { Long } from '@grpc/proto-loader';

export interface JobCounters {
  'jobId'?: (string);
  'stages'?: (_eddy_v1_control_StageCounters)[];
  'epoch'?: (number | string | Long);
  'cuts'?: (_eddy_v1_control_CutCounters)[];
}

export interface JobCounters__Output {
  'jobId': (string);
  'stages': (_eddy_v1_control_StageCounters__Output)[];
  'epoch': (number);
  'cuts': (_eddy_v1_control_CutCounters__Output)[];
}

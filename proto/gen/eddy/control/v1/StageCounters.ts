// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface StageCounters {
  'stageId'?: (string);
  'recordsIn'?: (number | string | Long);
  'recordsOut'?: (number | string | Long);
  'deadLetters'?: (number | string | Long);
  'backpressureMs'?: (number | string | Long);
  'senders'?: (number);
}

export interface StageCounters__Output {
  'stageId': (string);
  'recordsIn': (number);
  'recordsOut': (number);
  'deadLetters': (number);
  'backpressureMs': (number);
  'senders': (number);
}

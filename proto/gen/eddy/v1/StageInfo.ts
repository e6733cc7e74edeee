// Original file: proto/eddy/v1/jobs.proto

import type { Long } from '@grpc/proto-loader';

export interface StageInfo {
  'stageId'?: (string);
  'kind'?: (string);
  'recordsIn'?: (number | string | Long);
  'recordsOut'?: (number | string | Long);
  'deadLetters'?: (number | string | Long);
  'recordsInPerSecond'?: (number | string);
  'recordsOutPerSecond'?: (number | string);
  'backpressureMs'?: (number | string | Long);
  'backpressureRatio'?: (number | string);
}

export interface StageInfo__Output {
  'stageId': (string);
  'kind': (string);
  'recordsIn': (string);
  'recordsOut': (string);
  'deadLetters': (string);
  'recordsInPerSecond': (number);
  'recordsOutPerSecond': (number);
  'backpressureMs': (string);
  'backpressureRatio': (number);
}

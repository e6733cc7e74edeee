// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface SkippedRecord {
  'split'?: (number);
  'sequence'?: (number | string | Long);
  'stageId'?: (string);
  'reason'?: (string);
  'stack'?: (string);
  'attempts'?: (number);
}

export interface SkippedRecord__Output {
  'split': (number);
  'sequence': (number);
  'stageId': (string);
  'reason': (string);
  'stack': (string);
  'attempts': (number);
}

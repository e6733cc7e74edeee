// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface SourcePosition {
  'split'?: (number);
  'nextSequence'?: (number | string | Long);
  'maxEventTimeMs'?: (number | string | Long);
  'hasMaxEventTime'?: (boolean);
}

export interface SourcePosition__Output {
  'split': (number);
  'nextSequence': (number);
  'maxEventTimeMs': (number);
  'hasMaxEventTime': (boolean);
}

// Original file: proto/eddy/v1/features.proto

import type { Long } from '@grpc/proto-loader';

export interface AsOf {
  'unixMs'?: (number | string | Long);
}

export interface AsOf__Output {
  'unixMs': (string);
}

// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface SectionRef {
  'keyGroup'?: (number);
  'offset'?: (number | string | Long);
  'length'?: (number);
  'crc32'?: (number);
}

export interface SectionRef__Output {
  'keyGroup': (number);
  'offset': (number);
  'length': (number);
  'crc32': (number);
}

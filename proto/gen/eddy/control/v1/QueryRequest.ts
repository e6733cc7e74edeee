// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface QueryRequest {
  'feature'?: (string);
  'entityIds'?: (string)[];
  'view'?: (number);
  'epoch'?: (number | string | Long);
  'asOfUnixMs'?: (number | string | Long);
  'hasAsOf'?: (boolean);
  'owner'?: (string);
  'features'?: (string)[];
  'valueJson'?: (boolean);
}

export interface QueryRequest__Output {
  'feature': (string);
  'entityIds': (string)[];
  'view': (number);
  'epoch': (number);
  'asOfUnixMs': (number);
  'hasAsOf': (boolean);
  'owner': (string);
  'features': (string)[];
  'valueJson': (boolean);
}

// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface RestoreFrom {
  'metadataKey'?: (string);
  'checkpointId'?: (number | string | Long);
}

export interface RestoreFrom__Output {
  'metadataKey': (string);
  'checkpointId': (number);
}

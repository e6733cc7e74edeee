// Original file: proto/eddy/v2/feature_service.proto

import type { ServingOwner as _eddy_v2_ServingOwner, ServingOwner__Output as _eddy_v2_ServingOwner__Output } from '../../eddy/v2/ServingOwner';
import type { Long } from '@grpc/proto-loader';

export interface GetServingMapResponse {
  'jobId'?: (string);
  'epoch'?: (number | string | Long);
  'maxParallelism'?: (number);
  'owners'?: (_eddy_v2_ServingOwner)[];
}

export interface GetServingMapResponse__Output {
  'jobId': (string);
  'epoch': (string);
  'maxParallelism': (number);
  'owners': (_eddy_v2_ServingOwner__Output)[];
}

// Original file: proto/eddy/v1/features.proto

import type { View as _eddy_v1_View, View__Output as _eddy_v1_View__Output } from '../../eddy/v1/View';
import type { AsOf as _eddy_v1_AsOf, AsOf__Output as _eddy_v1_AsOf__Output } from '../../eddy/v1/AsOf';

export interface GetFeatureRequest {
  'jobId'?: (string);
  'feature'?: (string);
  'entityId'?: (string);
  'view'?: (_eddy_v1_View);
  'asOf'?: (_eddy_v1_AsOf | null);
}

export interface GetFeatureRequest__Output {
  'jobId': (string);
  'feature': (string);
  'entityId': (string);
  'view': (_eddy_v1_View__Output);
  'asOf': (_eddy_v1_AsOf__Output | null);
}

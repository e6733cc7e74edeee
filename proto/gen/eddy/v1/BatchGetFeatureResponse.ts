// Original file: proto/eddy/v1/features.proto

import type { FeatureValue as _eddy_v1_FeatureValue, FeatureValue__Output as _eddy_v1_FeatureValue__Output } from '../../eddy/v1/FeatureValue';

export interface BatchGetFeatureResponse {
  'values'?: (_eddy_v1_FeatureValue)[];
}

export interface BatchGetFeatureResponse__Output {
  'values': (_eddy_v1_FeatureValue__Output)[];
}

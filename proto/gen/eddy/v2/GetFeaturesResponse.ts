// Original file: proto/eddy/v2/feature_service.proto

import type { FeatureRow as _eddy_v2_FeatureRow, FeatureRow__Output as _eddy_v2_FeatureRow__Output } from '../../eddy/v2/FeatureRow';

export interface GetFeaturesResponse {
  'rows'?: (_eddy_v2_FeatureRow)[];
}

export interface GetFeaturesResponse__Output {
  'rows': (_eddy_v2_FeatureRow__Output)[];
}

// Original file: proto/eddy/v2/feature_service.proto

import type { FeatureValue as _eddy_v2_FeatureValue, FeatureValue__Output as _eddy_v2_FeatureValue__Output } from '../../eddy/v2/FeatureValue';

export interface FeatureRow {
  'entityId'?: (string);
  'values'?: (_eddy_v2_FeatureValue)[];
}

export interface FeatureRow__Output {
  'entityId': (string);
  'values': (_eddy_v2_FeatureValue__Output)[];
}

// Original file: proto/eddy/v1/features.proto

import type { FeatureValue as _eddy_v1_FeatureValue, FeatureValue__Output as _eddy_v1_FeatureValue__Output } from '../../eddy/v1/FeatureValue';

export interface FeatureChange {
  'value'?: (_eddy_v1_FeatureValue | null);
  'initial'?: (boolean);
}

export interface FeatureChange__Output {
  'value': (_eddy_v1_FeatureValue__Output | null);
  'initial': (boolean);
}

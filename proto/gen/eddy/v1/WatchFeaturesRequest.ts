// Original file: proto/eddy/v1/features.proto

import type { View as _eddy_v1_View, View__Output as _eddy_v1_View__Output } from '../../eddy/v1/View';

export interface WatchFeaturesRequest {
  'jobId'?: (string);
  'feature'?: (string);
  'entityIds'?: (string)[];
  'view'?: (_eddy_v1_View);
}

export interface WatchFeaturesRequest__Output {
  'jobId': (string);
  'feature': (string);
  'entityIds': (string)[];
  'view': (_eddy_v1_View__Output);
}

// Original file: proto/eddy/v2/feature_service.proto

import type { View as _eddy_v2_View, View__Output as _eddy_v2_View__Output } from '../../eddy/v2/View';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { ValueFormat as _eddy_v2_ValueFormat, ValueFormat__Output as _eddy_v2_ValueFormat__Output } from '../../eddy/v2/ValueFormat';

export interface GetFeaturesRequest {
  'jobId'?: (string);
  'features'?: (string)[];
  'entityIds'?: (string)[];
  'view'?: (_eddy_v2_View);
  'asOf'?: (_google_protobuf_Timestamp | null);
  'valueFormat'?: (_eddy_v2_ValueFormat);
}

export interface GetFeaturesRequest__Output {
  'jobId': (string);
  'features': (string)[];
  'entityIds': (string)[];
  'view': (_eddy_v2_View__Output);
  'asOf': (_google_protobuf_Timestamp__Output | null);
  'valueFormat': (_eddy_v2_ValueFormat__Output);
}

// Original file: proto/eddy/v2/feature_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Long } from '@grpc/proto-loader';

export interface FeatureValue {
  'feature'?: (string);
  'found'?: (boolean);
  'value'?: (_google_protobuf_Value | null);
  'eventTime'?: (_google_protobuf_Timestamp | null);
  'keyGroup'?: (number);
  'checkpointId'?: (number | string | Long);
  'uncommitted'?: (boolean);
  'beyondRetention'?: (boolean);
  'valueJson'?: (string);
}

export interface FeatureValue__Output {
  'feature': (string);
  'found': (boolean);
  'value': (_google_protobuf_Value__Output | null);
  'eventTime': (_google_protobuf_Timestamp__Output | null);
  'keyGroup': (number);
  'checkpointId': (string);
  'uncommitted': (boolean);
  'beyondRetention': (boolean);
  'valueJson': (string);
}

// Original file: proto/eddy/v1/features.proto

import type { Long } from '@grpc/proto-loader';

export interface FeatureValue {
  'entityId'?: (string);
  'found'?: (boolean);
  'valueJson'?: (string);
  'keyGroup'?: (number);
  'eventTimeUnixMs'?: (number | string | Long);
  'hasEventTime'?: (boolean);
  'checkpointId'?: (number | string | Long);
  'uncommitted'?: (boolean);
  'beyondRetention'?: (boolean);
}

export interface FeatureValue__Output {
  'entityId': (string);
  'found': (boolean);
  'valueJson': (string);
  'keyGroup': (number);
  'eventTimeUnixMs': (string);
  'hasEventTime': (boolean);
  'checkpointId': (string);
  'uncommitted': (boolean);
  'beyondRetention': (boolean);
}

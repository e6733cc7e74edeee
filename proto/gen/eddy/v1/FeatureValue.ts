// Original file: proto/eddy/v1/features.proto


export interface FeatureValue {
  'entityId'?: (string);
  'found'?: (boolean);
  'valueJson'?: (string);
  'keyGroup'?: (number);
}

export interface FeatureValue__Output {
  'entityId': (string);
  'found': (boolean);
  'valueJson': (string);
  'keyGroup': (number);
}

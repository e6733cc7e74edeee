// Original file: proto/eddy/v1/control.proto


export interface QueryValue {
  'entityId'?: (string);
  'found'?: (boolean);
  'valueJson'?: (string);
}

export interface QueryValue__Output {
  'entityId': (string);
  'found': (boolean);
  'valueJson': (string);
}

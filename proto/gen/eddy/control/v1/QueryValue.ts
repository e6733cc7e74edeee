// Original file: proto/eddy/control/v1/control.proto


export interface QueryValue {
  'entityId'?: (string);
  'found'?: (boolean);
  'valueJson'?: (string);
  'eventTimeUnixMs'?: (number | string);
  'hasEventTime'?: (boolean);
  'uncommitted'?: (boolean);
  'beyondRetention'?: (boolean);
  'feature'?: (string);
}

export interface QueryValue__Output {
  'entityId': (string);
  'found': (boolean);
  'valueJson': (string);
  'eventTimeUnixMs': (number);
  'hasEventTime': (boolean);
  'uncommitted': (boolean);
  'beyondRetention': (boolean);
  'feature': (string);
}

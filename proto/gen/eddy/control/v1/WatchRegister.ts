// Original file: proto/eddy/control/v1/control.proto


export interface WatchRegister {
  'watchId'?: (string);
  'feature'?: (string);
  'entityIds'?: (string)[];
  'leaseMs'?: (number);
  'inbox'?: (string);
}

export interface WatchRegister__Output {
  'watchId': (string);
  'feature': (string);
  'entityIds': (string)[];
  'leaseMs': (number);
  'inbox': (string);
}

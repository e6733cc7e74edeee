// Original file: proto/eddy/control/v1/control.proto


export interface Leave {
  'workerId'?: (string);
}

export interface Leave__Output {
  'workerId': (string);
}

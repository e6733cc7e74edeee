// Original file: proto/eddy/control/v1/control.proto


export interface Ack {
  'ok'?: (boolean);
  'error'?: (string);
}

export interface Ack__Output {
  'ok': (boolean);
  'error': (string);
}

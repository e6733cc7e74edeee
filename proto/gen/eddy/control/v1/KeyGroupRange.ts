// Original file: proto/eddy/control/v1/control.proto


export interface KeyGroupRange {
  'start'?: (number);
  'end'?: (number);
}

export interface KeyGroupRange__Output {
  'start': (number);
  'end': (number);
}

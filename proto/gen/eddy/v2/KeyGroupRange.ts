// Original file: proto/eddy/v2/feature_service.proto


export interface KeyGroupRange {
  'start'?: (number);
  'end'?: (number);
}

export interface KeyGroupRange__Output {
  'start': (number);
  'end': (number);
}

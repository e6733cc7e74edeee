// Original file: proto/eddy/control/v1/control.proto


export interface RegisterReply {
  'heartbeatIntervalMs'?: (number);
}

export interface RegisterReply__Output {
  'heartbeatIntervalMs': (number);
}

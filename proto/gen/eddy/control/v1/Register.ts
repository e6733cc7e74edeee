// Original file: proto/eddy/control/v1/control.proto


export interface Register {
  'workerId'?: (string);
  'pid'?: (number);
  'host'?: (string);
  'channelPublicKey'?: (Buffer | Uint8Array | string);
  'servingAddress'?: (string);
}

export interface Register__Output {
  'workerId': (string);
  'pid': (number);
  'host': (string);
  'channelPublicKey': (Buffer);
  'servingAddress': (string);
}

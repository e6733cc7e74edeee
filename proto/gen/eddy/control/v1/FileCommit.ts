// Original file: proto/eddy/control/v1/control.proto


export interface FileCommit {
  'stagedKey'?: (string);
  'finalKey'?: (string);
  'records'?: (number);
}

export interface FileCommit__Output {
  'stagedKey': (string);
  'finalKey': (string);
  'records': (number);
}

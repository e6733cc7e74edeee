// Original file: proto/eddy/control/v1/control.proto


export interface StartTasks {
  'jobId'?: (string);
}

export interface StartTasks__Output {
  'jobId': (string);
}

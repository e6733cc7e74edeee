// Original file: proto/eddy/control/v1/control.proto


export interface CancelTasks {
  'jobId'?: (string);
}

export interface CancelTasks__Output {
  'jobId': (string);
}

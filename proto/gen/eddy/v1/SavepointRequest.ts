// Original file: proto/eddy/v1/jobs.proto


export interface SavepointRequest {
  'jobId'?: (string);
  'stop'?: (boolean);
}

export interface SavepointRequest__Output {
  'jobId': (string);
  'stop': (boolean);
}

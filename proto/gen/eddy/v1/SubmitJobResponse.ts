// Original file: proto/eddy/v1/jobs.proto


export interface SubmitJobResponse {
  'jobId'?: (string);
  'bundleSha256'?: (string);
}

export interface SubmitJobResponse__Output {
  'jobId': (string);
  'bundleSha256': (string);
}

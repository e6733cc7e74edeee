// Original file: proto/eddy/v1/jobs.proto


export interface ListJobsRequest {
}

export interface ListJobsRequest__Output {
}

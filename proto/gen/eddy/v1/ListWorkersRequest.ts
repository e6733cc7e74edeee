// Original file: proto/eddy/v1/cluster.proto


export interface ListWorkersRequest {
}

export interface ListWorkersRequest__Output {
}

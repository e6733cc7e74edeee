// Original file: proto/eddy/v2/feature_service.proto


export interface GetServingMapRequest {
  'jobId'?: (string);
}

export interface GetServingMapRequest__Output {
  'jobId': (string);
}

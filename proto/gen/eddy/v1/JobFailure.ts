// Original file: proto/eddy/v1/jobs.proto

import type { Long } from '@grpc/proto-loader';

export interface JobFailure {
  'message'?: (string);
  'stageId'?: (string);
  'keyGroup'?: (number);
  'workerId'?: (string);
  'stack'?: (string);
  'atUnixMs'?: (number | string | Long);
}

export interface JobFailure__Output {
  'message': (string);
  'stageId': (string);
  'keyGroup': (number);
  'workerId': (string);
  'stack': (string);
  'atUnixMs': (string);
}

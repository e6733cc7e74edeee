// Original file: proto/eddy/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface CheckpointComplete {
  'jobId'?: (string);
  'checkpointId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
}

export interface CheckpointComplete__Output {
  'jobId': (string);
  'checkpointId': (string);
  'epoch': (string);
}

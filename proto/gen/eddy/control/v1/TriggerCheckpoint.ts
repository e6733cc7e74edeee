// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface TriggerCheckpoint {
  'jobId'?: (string);
  'checkpointId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'rematerializeKeyGroups'?: (number)[];
}

export interface TriggerCheckpoint__Output {
  'jobId': (string);
  'checkpointId': (number);
  'epoch': (number);
  'rematerializeKeyGroups': (number)[];
}

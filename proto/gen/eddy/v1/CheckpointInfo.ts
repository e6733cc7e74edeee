// Original file: proto/eddy/v1/jobs.proto

import type { Long } from '@grpc/proto-loader';

export interface CheckpointInfo {
  'completed'?: (number | string | Long);
  'failed'?: (number | string | Long);
  'lastFailure'?: (string);
  'lastDurationMs'?: (number | string | Long);
  'lastBytes'?: (number | string | Long);
  'latestId'?: (number | string | Long);
  'inFlightId'?: (number | string | Long);
  'idle'?: (boolean);
}

export interface CheckpointInfo__Output {
  'completed': (string);
  'failed': (string);
  'lastFailure': (string);
  'lastDurationMs': (string);
  'lastBytes': (string);
  'latestId': (string);
  'inFlightId': (string);
  'idle': (boolean);
}

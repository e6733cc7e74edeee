// Original file: proto/eddy/v1/jobs.proto

import type { Long } from '@grpc/proto-loader';

export interface SourceStartAt {
  'source'?: (string);
  'sequence'?: (number | string | Long);
  'timeUnixMs'?: (number | string | Long);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  'position'?: "sequence"|"timeUnixMs"|"earliest"|"latest";
}

export interface SourceStartAt__Output {
  'source': (string);
  'sequence'?: (string);
  'timeUnixMs'?: (string);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  'position'?: "sequence"|"timeUnixMs"|"earliest"|"latest";
}

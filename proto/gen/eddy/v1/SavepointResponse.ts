// Original file: proto/eddy/v1/jobs.proto

import type { JobInfo as _eddy_v1_JobInfo, JobInfo__Output as _eddy_v1_JobInfo__Output } from '../../eddy/v1/JobInfo';
import type { Long } from '@grpc/proto-loader';

export interface SavepointResponse {
  'path'?: (string);
  'checkpointId'?: (number | string | Long);
  'job'?: (_eddy_v1_JobInfo | null);
}

export interface SavepointResponse__Output {
  'path': (string);
  'checkpointId': (string);
  'job': (_eddy_v1_JobInfo__Output | null);
}

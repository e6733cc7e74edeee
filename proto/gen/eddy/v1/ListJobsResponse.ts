// Original file: proto/eddy/v1/jobs.proto

import type { JobInfo as _eddy_v1_JobInfo, JobInfo__Output as _eddy_v1_JobInfo__Output } from '../../eddy/v1/JobInfo';

export interface ListJobsResponse {
  'jobs'?: (_eddy_v1_JobInfo)[];
}

export interface ListJobsResponse__Output {
  'jobs': (_eddy_v1_JobInfo__Output)[];
}

// Original file: proto/eddy/v1/jobs.proto

import type { StageInfo as _eddy_v1_StageInfo, StageInfo__Output as _eddy_v1_StageInfo__Output } from '../../eddy/v1/StageInfo';
import type { JobFailure as _eddy_v1_JobFailure, JobFailure__Output as _eddy_v1_JobFailure__Output } from '../../eddy/v1/JobFailure';
import type { CheckpointInfo as _eddy_v1_CheckpointInfo, CheckpointInfo__Output as _eddy_v1_CheckpointInfo__Output } from '../../eddy/v1/CheckpointInfo';
import type { JobState as _eddy_v1_JobState, JobState__Output as _eddy_v1_JobState__Output } from '../../eddy/v1/JobState';
import type { Long } from '@grpc/proto-loader';

export interface JobInfo {
  'jobId'?: (string);
  'name'?: (string);
  'state'?: (string);
  'bundleSha256'?: (string);
  'submittedAtUnixMs'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'stages'?: (_eddy_v1_StageInfo)[];
  'lastFailure'?: (_eddy_v1_JobFailure | null);
  'features'?: (string)[];
  'checkpoints'?: (_eddy_v1_CheckpointInfo | null);
  'restarts'?: (number);
  'jobState'?: (_eddy_v1_JobState);
}

export interface JobInfo__Output {
  'jobId': (string);
  'name': (string);
  'state': (string);
  'bundleSha256': (string);
  'submittedAtUnixMs': (string);
  'epoch': (string);
  'stages': (_eddy_v1_StageInfo__Output)[];
  'lastFailure': (_eddy_v1_JobFailure__Output | null);
  'features': (string)[];
  'checkpoints': (_eddy_v1_CheckpointInfo__Output | null);
  'restarts': (number);
  'jobState': (_eddy_v1_JobState__Output);
}

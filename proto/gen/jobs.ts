import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { CancelJobRequest as _eddy_v1_CancelJobRequest, CancelJobRequest__Output as _eddy_v1_CancelJobRequest__Output } from './eddy/v1/CancelJobRequest';
import type { CheckpointInfo as _eddy_v1_CheckpointInfo, CheckpointInfo__Output as _eddy_v1_CheckpointInfo__Output } from './eddy/v1/CheckpointInfo';
import type { GetJobRequest as _eddy_v1_GetJobRequest, GetJobRequest__Output as _eddy_v1_GetJobRequest__Output } from './eddy/v1/GetJobRequest';
import type { JobFailure as _eddy_v1_JobFailure, JobFailure__Output as _eddy_v1_JobFailure__Output } from './eddy/v1/JobFailure';
import type { JobInfo as _eddy_v1_JobInfo, JobInfo__Output as _eddy_v1_JobInfo__Output } from './eddy/v1/JobInfo';
import type { JobServiceClient as _eddy_v1_JobServiceClient, JobServiceDefinition as _eddy_v1_JobServiceDefinition } from './eddy/v1/JobService';
import type { ListJobsRequest as _eddy_v1_ListJobsRequest, ListJobsRequest__Output as _eddy_v1_ListJobsRequest__Output } from './eddy/v1/ListJobsRequest';
import type { ListJobsResponse as _eddy_v1_ListJobsResponse, ListJobsResponse__Output as _eddy_v1_ListJobsResponse__Output } from './eddy/v1/ListJobsResponse';
import type { SavepointRequest as _eddy_v1_SavepointRequest, SavepointRequest__Output as _eddy_v1_SavepointRequest__Output } from './eddy/v1/SavepointRequest';
import type { SavepointResponse as _eddy_v1_SavepointResponse, SavepointResponse__Output as _eddy_v1_SavepointResponse__Output } from './eddy/v1/SavepointResponse';
import type { SourceStartAt as _eddy_v1_SourceStartAt, SourceStartAt__Output as _eddy_v1_SourceStartAt__Output } from './eddy/v1/SourceStartAt';
import type { StageInfo as _eddy_v1_StageInfo, StageInfo__Output as _eddy_v1_StageInfo__Output } from './eddy/v1/StageInfo';
import type { SubmitJobHeader as _eddy_v1_SubmitJobHeader, SubmitJobHeader__Output as _eddy_v1_SubmitJobHeader__Output } from './eddy/v1/SubmitJobHeader';
import type { SubmitJobRequest as _eddy_v1_SubmitJobRequest, SubmitJobRequest__Output as _eddy_v1_SubmitJobRequest__Output } from './eddy/v1/SubmitJobRequest';
import type { SubmitJobResponse as _eddy_v1_SubmitJobResponse, SubmitJobResponse__Output as _eddy_v1_SubmitJobResponse__Output } from './eddy/v1/SubmitJobResponse';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  eddy: {
    v1: {
      CancelJobRequest: MessageTypeDefinition<_eddy_v1_CancelJobRequest, _eddy_v1_CancelJobRequest__Output>
      CheckpointInfo: MessageTypeDefinition<_eddy_v1_CheckpointInfo, _eddy_v1_CheckpointInfo__Output>
      GetJobRequest: MessageTypeDefinition<_eddy_v1_GetJobRequest, _eddy_v1_GetJobRequest__Output>
      JobFailure: MessageTypeDefinition<_eddy_v1_JobFailure, _eddy_v1_JobFailure__Output>
      JobInfo: MessageTypeDefinition<_eddy_v1_JobInfo, _eddy_v1_JobInfo__Output>
      JobService: SubtypeConstructor<typeof grpc.Client, _eddy_v1_JobServiceClient> & { service: _eddy_v1_JobServiceDefinition }
      JobState: EnumTypeDefinition
      ListJobsRequest: MessageTypeDefinition<_eddy_v1_ListJobsRequest, _eddy_v1_ListJobsRequest__Output>
      ListJobsResponse: MessageTypeDefinition<_eddy_v1_ListJobsResponse, _eddy_v1_ListJobsResponse__Output>
      SavepointRequest: MessageTypeDefinition<_eddy_v1_SavepointRequest, _eddy_v1_SavepointRequest__Output>
      SavepointResponse: MessageTypeDefinition<_eddy_v1_SavepointResponse, _eddy_v1_SavepointResponse__Output>
      SourceStartAt: MessageTypeDefinition<_eddy_v1_SourceStartAt, _eddy_v1_SourceStartAt__Output>
      StageInfo: MessageTypeDefinition<_eddy_v1_StageInfo, _eddy_v1_StageInfo__Output>
      SubmitJobHeader: MessageTypeDefinition<_eddy_v1_SubmitJobHeader, _eddy_v1_SubmitJobHeader__Output>
      SubmitJobRequest: MessageTypeDefinition<_eddy_v1_SubmitJobRequest, _eddy_v1_SubmitJobRequest__Output>
      SubmitJobResponse: MessageTypeDefinition<_eddy_v1_SubmitJobResponse, _eddy_v1_SubmitJobResponse__Output>
    }
  }
}


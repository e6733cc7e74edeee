// Original file: proto/eddy/v1/jobs.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CancelJobRequest as _eddy_v1_CancelJobRequest, CancelJobRequest__Output as _eddy_v1_CancelJobRequest__Output } from '../../eddy/v1/CancelJobRequest';
import type { GetJobRequest as _eddy_v1_GetJobRequest, GetJobRequest__Output as _eddy_v1_GetJobRequest__Output } from '../../eddy/v1/GetJobRequest';
import type { JobInfo as _eddy_v1_JobInfo, JobInfo__Output as _eddy_v1_JobInfo__Output } from '../../eddy/v1/JobInfo';
import type { ListJobsRequest as _eddy_v1_ListJobsRequest, ListJobsRequest__Output as _eddy_v1_ListJobsRequest__Output } from '../../eddy/v1/ListJobsRequest';
import type { ListJobsResponse as _eddy_v1_ListJobsResponse, ListJobsResponse__Output as _eddy_v1_ListJobsResponse__Output } from '../../eddy/v1/ListJobsResponse';
import type { SavepointRequest as _eddy_v1_SavepointRequest, SavepointRequest__Output as _eddy_v1_SavepointRequest__Output } from '../../eddy/v1/SavepointRequest';
import type { SavepointResponse as _eddy_v1_SavepointResponse, SavepointResponse__Output as _eddy_v1_SavepointResponse__Output } from '../../eddy/v1/SavepointResponse';
import type { SubmitJobRequest as _eddy_v1_SubmitJobRequest, SubmitJobRequest__Output as _eddy_v1_SubmitJobRequest__Output } from '../../eddy/v1/SubmitJobRequest';
import type { SubmitJobResponse as _eddy_v1_SubmitJobResponse, SubmitJobResponse__Output as _eddy_v1_SubmitJobResponse__Output } from '../../eddy/v1/SubmitJobResponse';

export interface JobServiceClient extends grpc.Client {
  CancelJob(argument: _eddy_v1_CancelJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  CancelJob(argument: _eddy_v1_CancelJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  CancelJob(argument: _eddy_v1_CancelJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  CancelJob(argument: _eddy_v1_CancelJobRequest, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  cancelJob(argument: _eddy_v1_CancelJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  cancelJob(argument: _eddy_v1_CancelJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  cancelJob(argument: _eddy_v1_CancelJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  cancelJob(argument: _eddy_v1_CancelJobRequest, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  
  GetJob(argument: _eddy_v1_GetJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  GetJob(argument: _eddy_v1_GetJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  GetJob(argument: _eddy_v1_GetJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  GetJob(argument: _eddy_v1_GetJobRequest, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  getJob(argument: _eddy_v1_GetJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  getJob(argument: _eddy_v1_GetJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  getJob(argument: _eddy_v1_GetJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  getJob(argument: _eddy_v1_GetJobRequest, callback: grpc.requestCallback<_eddy_v1_JobInfo__Output>): grpc.ClientUnaryCall;
  
  ListJobs(argument: _eddy_v1_ListJobsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  ListJobs(argument: _eddy_v1_ListJobsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  ListJobs(argument: _eddy_v1_ListJobsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  ListJobs(argument: _eddy_v1_ListJobsRequest, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  listJobs(argument: _eddy_v1_ListJobsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  listJobs(argument: _eddy_v1_ListJobsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  listJobs(argument: _eddy_v1_ListJobsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  listJobs(argument: _eddy_v1_ListJobsRequest, callback: grpc.requestCallback<_eddy_v1_ListJobsResponse__Output>): grpc.ClientUnaryCall;
  
  Savepoint(argument: _eddy_v1_SavepointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  Savepoint(argument: _eddy_v1_SavepointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  Savepoint(argument: _eddy_v1_SavepointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  Savepoint(argument: _eddy_v1_SavepointRequest, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  savepoint(argument: _eddy_v1_SavepointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  savepoint(argument: _eddy_v1_SavepointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  savepoint(argument: _eddy_v1_SavepointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  savepoint(argument: _eddy_v1_SavepointRequest, callback: grpc.requestCallback<_eddy_v1_SavepointResponse__Output>): grpc.ClientUnaryCall;
  
  SubmitJob(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  SubmitJob(metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  SubmitJob(options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  SubmitJob(callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  submitJob(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  submitJob(metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  submitJob(options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  submitJob(callback: grpc.requestCallback<_eddy_v1_SubmitJobResponse__Output>): grpc.ClientWritableStream<_eddy_v1_SubmitJobRequest>;
  
}

export interface JobServiceHandlers extends grpc.UntypedServiceImplementation {
  CancelJob: grpc.handleUnaryCall<_eddy_v1_CancelJobRequest__Output, _eddy_v1_JobInfo>;
  
  GetJob: grpc.handleUnaryCall<_eddy_v1_GetJobRequest__Output, _eddy_v1_JobInfo>;
  
  ListJobs: grpc.handleUnaryCall<_eddy_v1_ListJobsRequest__Output, _eddy_v1_ListJobsResponse>;
  
  Savepoint: grpc.handleUnaryCall<_eddy_v1_SavepointRequest__Output, _eddy_v1_SavepointResponse>;
  
  SubmitJob: grpc.handleClientStreamingCall<_eddy_v1_SubmitJobRequest__Output, _eddy_v1_SubmitJobResponse>;
  
}

export interface JobServiceDefinition extends grpc.ServiceDefinition {
  CancelJob: MethodDefinition<_eddy_v1_CancelJobRequest, _eddy_v1_JobInfo, _eddy_v1_CancelJobRequest__Output, _eddy_v1_JobInfo__Output>
  GetJob: MethodDefinition<_eddy_v1_GetJobRequest, _eddy_v1_JobInfo, _eddy_v1_GetJobRequest__Output, _eddy_v1_JobInfo__Output>
  ListJobs: MethodDefinition<_eddy_v1_ListJobsRequest, _eddy_v1_ListJobsResponse, _eddy_v1_ListJobsRequest__Output, _eddy_v1_ListJobsResponse__Output>
  Savepoint: MethodDefinition<_eddy_v1_SavepointRequest, _eddy_v1_SavepointResponse, _eddy_v1_SavepointRequest__Output, _eddy_v1_SavepointResponse__Output>
  SubmitJob: MethodDefinition<_eddy_v1_SubmitJobRequest, _eddy_v1_SubmitJobResponse, _eddy_v1_SubmitJobRequest__Output, _eddy_v1_SubmitJobResponse__Output>
}

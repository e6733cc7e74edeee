// Original file: proto/eddy/v1/cluster.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ListWorkersRequest as _eddy_v1_ListWorkersRequest, ListWorkersRequest__Output as _eddy_v1_ListWorkersRequest__Output } from '../../eddy/v1/ListWorkersRequest';
import type { ListWorkersResponse as _eddy_v1_ListWorkersResponse, ListWorkersResponse__Output as _eddy_v1_ListWorkersResponse__Output } from '../../eddy/v1/ListWorkersResponse';

export interface ClusterServiceClient extends grpc.Client {
  ListWorkers(argument: _eddy_v1_ListWorkersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  ListWorkers(argument: _eddy_v1_ListWorkersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  ListWorkers(argument: _eddy_v1_ListWorkersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  ListWorkers(argument: _eddy_v1_ListWorkersRequest, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _eddy_v1_ListWorkersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _eddy_v1_ListWorkersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _eddy_v1_ListWorkersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _eddy_v1_ListWorkersRequest, callback: grpc.requestCallback<_eddy_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface ClusterServiceHandlers extends grpc.UntypedServiceImplementation {
  ListWorkers: grpc.handleUnaryCall<_eddy_v1_ListWorkersRequest__Output, _eddy_v1_ListWorkersResponse>;
  
}

export interface ClusterServiceDefinition extends grpc.ServiceDefinition {
  ListWorkers: MethodDefinition<_eddy_v1_ListWorkersRequest, _eddy_v1_ListWorkersResponse, _eddy_v1_ListWorkersRequest__Output, _eddy_v1_ListWorkersResponse__Output>
}

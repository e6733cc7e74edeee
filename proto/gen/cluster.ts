import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ClusterServiceClient as _eddy_v1_ClusterServiceClient, ClusterServiceDefinition as _eddy_v1_ClusterServiceDefinition } from './eddy/v1/ClusterService';
import type { KeyGroupRange as _eddy_v1_KeyGroupRange, KeyGroupRange__Output as _eddy_v1_KeyGroupRange__Output } from './eddy/v1/KeyGroupRange';
import type { ListWorkersRequest as _eddy_v1_ListWorkersRequest, ListWorkersRequest__Output as _eddy_v1_ListWorkersRequest__Output } from './eddy/v1/ListWorkersRequest';
import type { ListWorkersResponse as _eddy_v1_ListWorkersResponse, ListWorkersResponse__Output as _eddy_v1_ListWorkersResponse__Output } from './eddy/v1/ListWorkersResponse';
import type { WorkerAssignment as _eddy_v1_WorkerAssignment, WorkerAssignment__Output as _eddy_v1_WorkerAssignment__Output } from './eddy/v1/WorkerAssignment';
import type { WorkerInfo as _eddy_v1_WorkerInfo, WorkerInfo__Output as _eddy_v1_WorkerInfo__Output } from './eddy/v1/WorkerInfo';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  eddy: {
    v1: {
      ClusterService: SubtypeConstructor<typeof grpc.Client, _eddy_v1_ClusterServiceClient> & { service: _eddy_v1_ClusterServiceDefinition }
      KeyGroupRange: MessageTypeDefinition<_eddy_v1_KeyGroupRange, _eddy_v1_KeyGroupRange__Output>
      ListWorkersRequest: MessageTypeDefinition<_eddy_v1_ListWorkersRequest, _eddy_v1_ListWorkersRequest__Output>
      ListWorkersResponse: MessageTypeDefinition<_eddy_v1_ListWorkersResponse, _eddy_v1_ListWorkersResponse__Output>
      WorkerAssignment: MessageTypeDefinition<_eddy_v1_WorkerAssignment, _eddy_v1_WorkerAssignment__Output>
      WorkerInfo: MessageTypeDefinition<_eddy_v1_WorkerInfo, _eddy_v1_WorkerInfo__Output>
      WorkerState: EnumTypeDefinition
    }
  }
}


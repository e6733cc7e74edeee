import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AsOf as _eddy_v1_AsOf, AsOf__Output as _eddy_v1_AsOf__Output } from './eddy/v1/AsOf';
import type { BatchGetFeatureRequest as _eddy_v1_BatchGetFeatureRequest, BatchGetFeatureRequest__Output as _eddy_v1_BatchGetFeatureRequest__Output } from './eddy/v1/BatchGetFeatureRequest';
import type { BatchGetFeatureResponse as _eddy_v1_BatchGetFeatureResponse, BatchGetFeatureResponse__Output as _eddy_v1_BatchGetFeatureResponse__Output } from './eddy/v1/BatchGetFeatureResponse';
import type { FeatureChange as _eddy_v1_FeatureChange, FeatureChange__Output as _eddy_v1_FeatureChange__Output } from './eddy/v1/FeatureChange';
import type { FeatureServiceClient as _eddy_v1_FeatureServiceClient, FeatureServiceDefinition as _eddy_v1_FeatureServiceDefinition } from './eddy/v1/FeatureService';
import type { FeatureValue as _eddy_v1_FeatureValue, FeatureValue__Output as _eddy_v1_FeatureValue__Output } from './eddy/v1/FeatureValue';
import type { GetFeatureRequest as _eddy_v1_GetFeatureRequest, GetFeatureRequest__Output as _eddy_v1_GetFeatureRequest__Output } from './eddy/v1/GetFeatureRequest';
import type { WatchFeaturesRequest as _eddy_v1_WatchFeaturesRequest, WatchFeaturesRequest__Output as _eddy_v1_WatchFeaturesRequest__Output } from './eddy/v1/WatchFeaturesRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  eddy: {
    v1: {
      AsOf: MessageTypeDefinition<_eddy_v1_AsOf, _eddy_v1_AsOf__Output>
      BatchGetFeatureRequest: MessageTypeDefinition<_eddy_v1_BatchGetFeatureRequest, _eddy_v1_BatchGetFeatureRequest__Output>
      BatchGetFeatureResponse: MessageTypeDefinition<_eddy_v1_BatchGetFeatureResponse, _eddy_v1_BatchGetFeatureResponse__Output>
      FeatureChange: MessageTypeDefinition<_eddy_v1_FeatureChange, _eddy_v1_FeatureChange__Output>
      FeatureService: SubtypeConstructor<typeof grpc.Client, _eddy_v1_FeatureServiceClient> & { service: _eddy_v1_FeatureServiceDefinition }
      FeatureValue: MessageTypeDefinition<_eddy_v1_FeatureValue, _eddy_v1_FeatureValue__Output>
      GetFeatureRequest: MessageTypeDefinition<_eddy_v1_GetFeatureRequest, _eddy_v1_GetFeatureRequest__Output>
      View: EnumTypeDefinition
      WatchFeaturesRequest: MessageTypeDefinition<_eddy_v1_WatchFeaturesRequest, _eddy_v1_WatchFeaturesRequest__Output>
    }
  }
}


import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { FeatureRow as _eddy_v2_FeatureRow, FeatureRow__Output as _eddy_v2_FeatureRow__Output } from './eddy/v2/FeatureRow';
import type { FeatureServiceClient as _eddy_v2_FeatureServiceClient, FeatureServiceDefinition as _eddy_v2_FeatureServiceDefinition } from './eddy/v2/FeatureService';
import type { FeatureValue as _eddy_v2_FeatureValue, FeatureValue__Output as _eddy_v2_FeatureValue__Output } from './eddy/v2/FeatureValue';
import type { GetFeaturesRequest as _eddy_v2_GetFeaturesRequest, GetFeaturesRequest__Output as _eddy_v2_GetFeaturesRequest__Output } from './eddy/v2/GetFeaturesRequest';
import type { GetFeaturesResponse as _eddy_v2_GetFeaturesResponse, GetFeaturesResponse__Output as _eddy_v2_GetFeaturesResponse__Output } from './eddy/v2/GetFeaturesResponse';
import type { GetServingMapRequest as _eddy_v2_GetServingMapRequest, GetServingMapRequest__Output as _eddy_v2_GetServingMapRequest__Output } from './eddy/v2/GetServingMapRequest';
import type { GetServingMapResponse as _eddy_v2_GetServingMapResponse, GetServingMapResponse__Output as _eddy_v2_GetServingMapResponse__Output } from './eddy/v2/GetServingMapResponse';
import type { KeyGroupRange as _eddy_v2_KeyGroupRange, KeyGroupRange__Output as _eddy_v2_KeyGroupRange__Output } from './eddy/v2/KeyGroupRange';
import type { ServingOwner as _eddy_v2_ServingOwner, ServingOwner__Output as _eddy_v2_ServingOwner__Output } from './eddy/v2/ServingOwner';
import type { ListValue as _google_protobuf_ListValue, ListValue__Output as _google_protobuf_ListValue__Output } from './google/protobuf/ListValue';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from './google/protobuf/Value';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  eddy: {
    v2: {
      FeatureRow: MessageTypeDefinition<_eddy_v2_FeatureRow, _eddy_v2_FeatureRow__Output>
      FeatureService: SubtypeConstructor<typeof grpc.Client, _eddy_v2_FeatureServiceClient> & { service: _eddy_v2_FeatureServiceDefinition }
      FeatureValue: MessageTypeDefinition<_eddy_v2_FeatureValue, _eddy_v2_FeatureValue__Output>
      GetFeaturesRequest: MessageTypeDefinition<_eddy_v2_GetFeaturesRequest, _eddy_v2_GetFeaturesRequest__Output>
      GetFeaturesResponse: MessageTypeDefinition<_eddy_v2_GetFeaturesResponse, _eddy_v2_GetFeaturesResponse__Output>
      GetServingMapRequest: MessageTypeDefinition<_eddy_v2_GetServingMapRequest, _eddy_v2_GetServingMapRequest__Output>
      GetServingMapResponse: MessageTypeDefinition<_eddy_v2_GetServingMapResponse, _eddy_v2_GetServingMapResponse__Output>
      KeyGroupRange: MessageTypeDefinition<_eddy_v2_KeyGroupRange, _eddy_v2_KeyGroupRange__Output>
      ServingOwner: MessageTypeDefinition<_eddy_v2_ServingOwner, _eddy_v2_ServingOwner__Output>
      ValueFormat: EnumTypeDefinition
      View: EnumTypeDefinition
    }
  }
  google: {
    protobuf: {
      ListValue: MessageTypeDefinition<_google_protobuf_ListValue, _google_protobuf_ListValue__Output>
      NullValue: EnumTypeDefinition
      Struct: MessageTypeDefinition<_google_protobuf_Struct, _google_protobuf_Struct__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
      Value: MessageTypeDefinition<_google_protobuf_Value, _google_protobuf_Value__Output>
    }
  }
}


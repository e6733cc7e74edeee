// Original file: proto/eddy/v2/feature_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetFeaturesRequest as _eddy_v2_GetFeaturesRequest, GetFeaturesRequest__Output as _eddy_v2_GetFeaturesRequest__Output } from '../../eddy/v2/GetFeaturesRequest';
import type { GetFeaturesResponse as _eddy_v2_GetFeaturesResponse, GetFeaturesResponse__Output as _eddy_v2_GetFeaturesResponse__Output } from '../../eddy/v2/GetFeaturesResponse';

export interface FeatureServiceClient extends grpc.Client {
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface FeatureServiceHandlers extends grpc.UntypedServiceImplementation {
  GetFeatures: grpc.handleUnaryCall<_eddy_v2_GetFeaturesRequest__Output, _eddy_v2_GetFeaturesResponse>;
  
}

export interface FeatureServiceDefinition extends grpc.ServiceDefinition {
  GetFeatures: MethodDefinition<_eddy_v2_GetFeaturesRequest, _eddy_v2_GetFeaturesResponse, _eddy_v2_GetFeaturesRequest__Output, _eddy_v2_GetFeaturesResponse__Output>
}

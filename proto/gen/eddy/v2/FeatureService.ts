// Original file: proto/eddy/v2/feature_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetFeaturesRequest as _eddy_v2_GetFeaturesRequest, GetFeaturesRequest__Output as _eddy_v2_GetFeaturesRequest__Output } from '../../eddy/v2/GetFeaturesRequest';
import type { GetFeaturesResponse as _eddy_v2_GetFeaturesResponse, GetFeaturesResponse__Output as _eddy_v2_GetFeaturesResponse__Output } from '../../eddy/v2/GetFeaturesResponse';
import type { GetServingMapRequest as _eddy_v2_GetServingMapRequest, GetServingMapRequest__Output as _eddy_v2_GetServingMapRequest__Output } from '../../eddy/v2/GetServingMapRequest';
import type { GetServingMapResponse as _eddy_v2_GetServingMapResponse, GetServingMapResponse__Output as _eddy_v2_GetServingMapResponse__Output } from '../../eddy/v2/GetServingMapResponse';

export interface FeatureServiceClient extends grpc.Client {
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  GetFeatures(argument: _eddy_v2_GetFeaturesRequest, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  getFeatures(argument: _eddy_v2_GetFeaturesRequest, callback: grpc.requestCallback<_eddy_v2_GetFeaturesResponse__Output>): grpc.ClientUnaryCall;
  
  GetServingMap(argument: _eddy_v2_GetServingMapRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  GetServingMap(argument: _eddy_v2_GetServingMapRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  GetServingMap(argument: _eddy_v2_GetServingMapRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  GetServingMap(argument: _eddy_v2_GetServingMapRequest, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  getServingMap(argument: _eddy_v2_GetServingMapRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  getServingMap(argument: _eddy_v2_GetServingMapRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  getServingMap(argument: _eddy_v2_GetServingMapRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  getServingMap(argument: _eddy_v2_GetServingMapRequest, callback: grpc.requestCallback<_eddy_v2_GetServingMapResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface FeatureServiceHandlers extends grpc.UntypedServiceImplementation {
  GetFeatures: grpc.handleUnaryCall<_eddy_v2_GetFeaturesRequest__Output, _eddy_v2_GetFeaturesResponse>;
  
  GetServingMap: grpc.handleUnaryCall<_eddy_v2_GetServingMapRequest__Output, _eddy_v2_GetServingMapResponse>;
  
}

export interface FeatureServiceDefinition extends grpc.ServiceDefinition {
  GetFeatures: MethodDefinition<_eddy_v2_GetFeaturesRequest, _eddy_v2_GetFeaturesResponse, _eddy_v2_GetFeaturesRequest__Output, _eddy_v2_GetFeaturesResponse__Output>
  GetServingMap: MethodDefinition<_eddy_v2_GetServingMapRequest, _eddy_v2_GetServingMapResponse, _eddy_v2_GetServingMapRequest__Output, _eddy_v2_GetServingMapResponse__Output>
}

// Original file: proto/eddy/v1/features.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BatchGetFeatureRequest as _eddy_v1_BatchGetFeatureRequest, BatchGetFeatureRequest__Output as _eddy_v1_BatchGetFeatureRequest__Output } from '../../eddy/v1/BatchGetFeatureRequest';
import type { BatchGetFeatureResponse as _eddy_v1_BatchGetFeatureResponse, BatchGetFeatureResponse__Output as _eddy_v1_BatchGetFeatureResponse__Output } from '../../eddy/v1/BatchGetFeatureResponse';
import type { FeatureChange as _eddy_v1_FeatureChange, FeatureChange__Output as _eddy_v1_FeatureChange__Output } from '../../eddy/v1/FeatureChange';
import type { FeatureValue as _eddy_v1_FeatureValue, FeatureValue__Output as _eddy_v1_FeatureValue__Output } from '../../eddy/v1/FeatureValue';
import type { GetFeatureRequest as _eddy_v1_GetFeatureRequest, GetFeatureRequest__Output as _eddy_v1_GetFeatureRequest__Output } from '../../eddy/v1/GetFeatureRequest';
import type { WatchFeaturesRequest as _eddy_v1_WatchFeaturesRequest, WatchFeaturesRequest__Output as _eddy_v1_WatchFeaturesRequest__Output } from '../../eddy/v1/WatchFeaturesRequest';

export interface FeatureServiceClient extends grpc.Client {
  BatchGet(argument: _eddy_v1_BatchGetFeatureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  BatchGet(argument: _eddy_v1_BatchGetFeatureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  BatchGet(argument: _eddy_v1_BatchGetFeatureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  BatchGet(argument: _eddy_v1_BatchGetFeatureRequest, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _eddy_v1_BatchGetFeatureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _eddy_v1_BatchGetFeatureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _eddy_v1_BatchGetFeatureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _eddy_v1_BatchGetFeatureRequest, callback: grpc.requestCallback<_eddy_v1_BatchGetFeatureResponse__Output>): grpc.ClientUnaryCall;
  
  Get(argument: _eddy_v1_GetFeatureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  Get(argument: _eddy_v1_GetFeatureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  Get(argument: _eddy_v1_GetFeatureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  Get(argument: _eddy_v1_GetFeatureRequest, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  get(argument: _eddy_v1_GetFeatureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  get(argument: _eddy_v1_GetFeatureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  get(argument: _eddy_v1_GetFeatureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  get(argument: _eddy_v1_GetFeatureRequest, callback: grpc.requestCallback<_eddy_v1_FeatureValue__Output>): grpc.ClientUnaryCall;
  
  WatchFeatures(argument: _eddy_v1_WatchFeaturesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_eddy_v1_FeatureChange__Output>;
  WatchFeatures(argument: _eddy_v1_WatchFeaturesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_eddy_v1_FeatureChange__Output>;
  watchFeatures(argument: _eddy_v1_WatchFeaturesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_eddy_v1_FeatureChange__Output>;
  watchFeatures(argument: _eddy_v1_WatchFeaturesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_eddy_v1_FeatureChange__Output>;
  
}

export interface FeatureServiceHandlers extends grpc.UntypedServiceImplementation {
  BatchGet: grpc.handleUnaryCall<_eddy_v1_BatchGetFeatureRequest__Output, _eddy_v1_BatchGetFeatureResponse>;
  
  Get: grpc.handleUnaryCall<_eddy_v1_GetFeatureRequest__Output, _eddy_v1_FeatureValue>;
  
  WatchFeatures: grpc.handleServerStreamingCall<_eddy_v1_WatchFeaturesRequest__Output, _eddy_v1_FeatureChange>;
  
}

export interface FeatureServiceDefinition extends grpc.ServiceDefinition {
  BatchGet: MethodDefinition<_eddy_v1_BatchGetFeatureRequest, _eddy_v1_BatchGetFeatureResponse, _eddy_v1_BatchGetFeatureRequest__Output, _eddy_v1_BatchGetFeatureResponse__Output>
  Get: MethodDefinition<_eddy_v1_GetFeatureRequest, _eddy_v1_FeatureValue, _eddy_v1_GetFeatureRequest__Output, _eddy_v1_FeatureValue__Output>
  WatchFeatures: MethodDefinition<_eddy_v1_WatchFeaturesRequest, _eddy_v1_FeatureChange, _eddy_v1_WatchFeaturesRequest__Output, _eddy_v1_FeatureChange__Output>
}

// Loads the .proto files of proto/eddy/v1 once. gRPC services go through @grpc/proto-loader;
// control-plane messages over NATS are encoded with protobufjs from the same files, so proto/
// stays the one source of truth for every wire format that is not a record batch.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType as JobsProto } from '../proto/gen/jobs.ts';
import type { ProtoGrpcType as FeaturesProto } from '../proto/gen/features.ts';
import type { ProtoGrpcType as ClusterProto } from '../proto/gen/cluster.ts';

export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));
const FILES = ['eddy/v1/jobs.proto', 'eddy/v1/features.proto', 'eddy/v1/cluster.proto'];

/** Options shared by the loader and the generated types (`npm run proto:gen`). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export type EddyGrpc = JobsProto & FeaturesProto & ClusterProto;

let grpcPackage: EddyGrpc | undefined;

/** The gRPC package object: service definitions and client constructors. */
export function loadGrpc(): EddyGrpc {
  if (!grpcPackage) {
    const def = protoLoader.loadSync(FILES, PROTO_LOADER_OPTIONS);
    grpcPackage = grpc.loadPackageDefinition(def) as unknown as EddyGrpc;
  }
  return grpcPackage;
}

let controlRoot: protobuf.Root | undefined;

function control(): protobuf.Root {
  if (!controlRoot) controlRoot = protobuf.loadSync(path.join(PROTO_DIR, 'eddy/v1/control.proto'));
  return controlRoot;
}

const CONVERSION: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true };

/**
 * A typed protobuf codec for one control message: encode takes the message as a sender writes it
 * (any field may be left out: proto3 sends its default), decode returns every field.
 */
export interface MessageCodec<In, Out = In> {
  encode(message: In): Uint8Array;
  decode(bytes: Uint8Array): Out;
}

export function controlCodec<In extends object, Out = In>(name: string): MessageCodec<In, Out> {
  let type: protobuf.Type | undefined;
  const t = () => (type ??= control().lookupType(`eddy.v1.control.${name}`));
  return {
    encode: (message) => t().encode(t().fromObject(message as { [k: string]: unknown })).finish(),
    decode: (bytes) => t().toObject(t().decode(bytes), CONVERSION) as Out,
  };
}

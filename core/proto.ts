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
import type { ProtoGrpcType as FeaturesV2Proto } from '../proto/gen/feature_service.ts';

export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));
/** The public gRPC API: every file a client may compile (and server reflection describes). */
export const PUBLIC_PROTO_FILES = ['eddy/v1/jobs.proto', 'eddy/v1/features.proto', 'eddy/v1/cluster.proto', 'eddy/v2/feature_service.proto'];

/** Options shared by the loader and the generated types (`npm run proto:gen`). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export type EddyGrpc = JobsProto & FeaturesProto & ClusterProto & FeaturesV2Proto;

let definition: protoLoader.PackageDefinition | undefined;

/** The package definition of the public API (loaded once): services, and server reflection. */
export function publicPackageDefinition(): protoLoader.PackageDefinition {
  return (definition ??= protoLoader.loadSync(PUBLIC_PROTO_FILES, PROTO_LOADER_OPTIONS));
}

let grpcPackage: EddyGrpc | undefined;

/** The gRPC package object: service definitions and client constructors. */
export function loadGrpc(): EddyGrpc {
  if (!grpcPackage) {
    grpcPackage = grpc.loadPackageDefinition(publicPackageDefinition()) as unknown as EddyGrpc;
  }
  return grpcPackage;
}

let controlRoot: protobuf.Root | undefined;

function control(): protobuf.Root {
  if (!controlRoot) controlRoot = protobuf.loadSync(path.join(PROTO_DIR, 'eddy/control/v1/control.proto'));
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
  const t = () => (type ??= control().lookupType(`eddy.control.v1.${name}`));
  return {
    encode: (message) => t().encode(t().fromObject(message as { [k: string]: unknown })).finish(),
    decode: (bytes) => t().toObject(t().decode(bytes), CONVERSION) as Out,
  };
}

let rpcRoot: protobuf.Root | undefined;

function rpc(): protobuf.Root {
  if (!rpcRoot) {
    rpcRoot = new protobuf.Root();
    // google/protobuf/*.proto come with protobufjs; google/rpc/*.proto are vendored in proto/.
    rpcRoot.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(PROTO_DIR, target));
    rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
  }
  return rpcRoot;
}

/** A detail of a google.rpc.Status: a message of google/rpc/error_details.proto and its fields. */
export type RpcStatusDetail =
  | { type: 'ErrorInfo'; reason: string; domain: string; metadata?: Record<string, string> }
  | { type: 'RetryInfo'; retryDelayMs: number }
  | { type: 'BadRequest'; fieldViolations: Array<{ field: string; description: string }> };

/** The bytes of a google.rpc.Status (the `grpc-status-details-bin` trailer) with typed details. */
export function encodeRpcStatus(code: number, message: string, details: readonly RpcStatusDetail[]): Buffer {
  const root = rpc();
  const any = details.map((d) => {
    const type = root.lookupType(`google.rpc.${d.type}`);
    const fields =
      d.type === 'RetryInfo'
        ? { retryDelay: { seconds: Math.floor(d.retryDelayMs / 1000), nanos: (d.retryDelayMs % 1000) * 1_000_000 } }
        : d.type === 'ErrorInfo'
          ? { reason: d.reason, domain: d.domain, metadata: d.metadata ?? {} }
          : { fieldViolations: d.fieldViolations };
    return { type_url: `type.googleapis.com/google.rpc.${d.type}`, value: type.encode(type.fromObject(fields)).finish() };
  });
  const status = root.lookupType('google.rpc.Status');
  return Buffer.from(status.encode(status.fromObject({ code, message, details: any })).finish());
}

/** Decodes a google.rpc.Status trailer into its code, message and typed details (clients, tests). */
export function decodeRpcStatus(bytes: Uint8Array): { code: number; message: string; details: RpcStatusDetail[] } {
  const root = rpc();
  const status = root.lookupType('google.rpc.Status').toObject(root.lookupType('google.rpc.Status').decode(bytes), { defaults: true, longs: Number }) as {
    code: number;
    message: string;
    details: Array<{ type_url?: string; typeUrl?: string; value: Uint8Array }>;
  };
  const details: RpcStatusDetail[] = [];
  for (const d of status.details) {
    const name = (d.type_url ?? d.typeUrl ?? '').replace('type.googleapis.com/google.rpc.', '');
    if (name !== 'ErrorInfo' && name !== 'RetryInfo' && name !== 'BadRequest') continue;
    const type = root.lookupType(`google.rpc.${name}`);
    const o = type.toObject(type.decode(d.value), { defaults: true, longs: Number }) as { reason: string; domain: string; metadata: Record<string, string>; fieldViolations: Array<{ field: string; description: string }>; retryDelay?: { seconds: number; nanos: number } };
    if (name === 'RetryInfo') {
      const delay = o.retryDelay as { seconds: number; nanos: number } | undefined;
      details.push({ type: 'RetryInfo', retryDelayMs: (delay?.seconds ?? 0) * 1000 + Math.round((delay?.nanos ?? 0) / 1e6) });
    } else if (name === 'ErrorInfo') details.push({ type: 'ErrorInfo', reason: o.reason, domain: o.domain, metadata: o.metadata });
    else details.push({ type: 'BadRequest', fieldViolations: o.fieldViolations });
  }
  return { code: status.code, message: status.message, details };
}

#!/usr/bin/env node
// Container healthcheck of the coordinator: asks its standard grpc.health.v1.Health service
// whether the server ('' = the whole server) is SERVING. Plain JS so that it starts in ~100 ms
// without tsx; the slim image has no curl or grpc_health_probe.
//   node deploy/grpc-health.mjs [host:port] [service]   (default $EDDY_ADDR, else 127.0.0.1:7400)
// Exit 0 when SERVING, 1 otherwise (with the reason on stderr).
import { createRequire } from 'node:module';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const address = process.argv[2] || process.env.EDDY_ADDR || '127.0.0.1:7400';
const service = process.argv[3] ?? '';
const TIMEOUT_MS = 3_000;

const require = createRequire(import.meta.url);
const protoFile = path.join(path.dirname(require.resolve('grpc-health-check/package.json')), 'proto/health/v1/health.proto');
const definition = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { enums: String }));
const client = new definition.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
client.check({ service }, { deadline: Date.now() + TIMEOUT_MS }, (err, reply) => {
  client.close();
  if (err) {
    process.stderr.write(`grpc-health: ${address}: ${err.message}\n`);
    process.exit(1);
  }
  if (reply.status !== 'SERVING') {
    process.stderr.write(`grpc-health: ${address}: ${reply.status}\n`);
    process.exit(1);
  }
  process.exit(0);
});

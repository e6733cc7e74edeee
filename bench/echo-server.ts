// The transport floor of the Get benchmark: a bare grpc-js server in its own process whose one
// unary method returns the request bytes, no decoding and no work. `node --import tsx
// bench/echo-server.ts` prints "echo listening on <port>".
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';

export const ECHO_METHOD = '/bench.Echo/Echo';

const identity = (b: Buffer): Buffer => b;

function serve(): void {
  const server = new grpc.Server();
  server.addService(
    {
      Echo: {
        path: ECHO_METHOD,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request) },
  );
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    console.log(`echo listening on ${port}`);
  });
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

// Imported for ECHO_METHOD by bench/feature-store.ts: serve only when run as the program.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) serve();

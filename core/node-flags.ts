// Node's flags for Eddy's own processes (coordinator, worker, the eddy command): `eddy up`
// (cli/local-cluster.ts) and the test kit start them with these, and the image's entry point
// (deploy/docker-entrypoint.sh) repeats them.
//
// A larger young generation for a server's allocation rate: a worker's main thread answering
// 5,000 gRPC calls a second filled the default one every ~90 ms, and its garbage lived just long
// enough to be promoted. The old generation then grew by ~8 MB a scavenge until a mark-compact
// paused the thread for 20-110 ms, which was the p99 of every call, health checks included.
// With 32 MB semi-spaces the p99 of direct Gets at 2,500/s fell from a median of 217 ms to ~60 ms
// over 6-7 runs each (single runs vary 2-4 times), for 60-95 MB more RSS per worker. Events/s did
// not move (docs/BENCHMARKS.md). V8's flags are the process's: a job's thread
// (worker/isolated-job.ts) has the same young generation.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

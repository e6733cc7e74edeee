// The Redis baselines of the feature-store benchmarks: redis-server from Debian's packages
// (scripts/ensure-redis-server.sh), started here on a free loopback port with persistence off,
// and the ioredis client. Redis is what a production team used before (USE-CASES.md §1).
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { freePort, startProcess, type ChildHandle } from '../test/kit/index.ts';

export interface RedisServer {
  port: number;
  client: Redis;
  stop(): Promise<void>;
}

function redisBinary(): string {
  if (process.env.EDDY_REDIS_SERVER) return process.env.EDDY_REDIS_SERVER;
  for (const p of ['/usr/bin/redis-server', '/usr/sbin/redis-server', '/usr/local/bin/redis-server', '/opt/homebrew/bin/redis-server']) if (existsSync(p)) return p;
  return 'redis-server';
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child: ChildHandle = await startProcess({
    name: 'redis-server',
    command: redisBinary(),
    // No RDB snapshots, no AOF: an in-memory cache, as a feature-store baseline is run.
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes'],
    readyLine: /Ready to accept connections/,
    readyTimeoutMs: 10_000,
  });
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, enableAutoPipelining: false });
  try {
    await client.connect();
  } catch (e) {
    await child.stop();
    throw e;
  }
  return {
    port,
    client,
    stop: async () => {
      client.disconnect();
      await child.stop();
    },
  };
}

/** Writes `count` keys with SET in pipelines of `pipeline`; returns writes per second. */
export async function redisPipelinedSet(client: Redis, count: number, key: (i: number) => string, value: (i: number) => string, pipeline = 1000): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i += pipeline) {
    const p = client.pipeline();
    for (let j = i; j < Math.min(count, i + pipeline); j++) p.set(key(j), value(j));
    const results = await p.exec();
    for (const [err] of results ?? []) if (err) throw err;
  }
  return count / ((performance.now() - t0) / 1000);
}

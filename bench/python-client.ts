// Feature reads from Python (issue 17: most feature-store reads come from model-serving code in
// Python): clients/python's FeatureClient against one worker with --serve holding
// customer-experience's state of 10,000 entities, sequential calls of BENCH_PYTHON_BATCH ids (100,
// then 1) for BENCH_PYTHON_SECONDS each, through the coordinator and directly from the owner; values
// as google.protobuf.Value converted with json_format.MessageToDict (get_features before
// VALUE_FORMAT_JSON) and as JSON text read with json.loads (get_features now). The baseline: Redis
// MGET / GET of the same values' JSON from redis-py, json.loads on each, in the same run.
//
//   node --import tsx bench/python-client.ts          (needs /usr/bin/python3 with python3-grpcio:
//                                                      scripts/ensure-python-grpc.sh; python3-redis
//                                                      for the baseline: scripts/ensure-python-redis.sh)
// EDDY_DIST=<tree> runs the compiled processes; BENCH_RUNS=n repeats the Python part (medians).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess, startCluster } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { FeatureClient } from '../sdk/feature-client.ts';
import { CX_JOB, RUNS, cxEvent, cxProcessed, isMain, machineLine, median, ratio, runMain } from './lib.ts';
import { startRedis } from './redis.ts';

const PYTHON = '/usr/bin/python3';
const REPO = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_PYTHON_SECONDS ?? 3);
const BATCHES = (process.env.BENCH_PYTHON_BATCH ?? '100,1').split(',').map(Number);
const ENTITIES = 10_000;

interface Measured {
  name: string;
  calls: number;
  keys_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

function ensure(script: string): void {
  execFileSync(join(REPO, 'scripts', script), { stdio: ['ignore', 'inherit', 'inherit'] });
}

export async function pythonClient(): Promise<void> {
  ensure('ensure-python-grpc.sh');
  ensure('ensure-python-redis.sh');
  ensure('ensure-redis-server.sh');
  console.log(machineLine());
  const withRedis = (await runProcess({ name: 'python3 -c import redis', command: PYTHON, args: ['-c', 'import redis'], timeoutMs: 10_000 })).code === 0;
  if (!withRedis) console.log('no python3-redis: the Redis baseline is left out');
  await using cluster = await startCluster({ workers: 1, workerArgs: ['--serve', '127.0.0.1:0'] });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-python-bench-'));
  const redis = withRedis ? await startRedis() : undefined;
  using admin = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  using features = new FeatureClient({ address: cluster.address, timeoutMs: 10_000 });
  try {
    await cxProcessed(cluster, admin, 1, join(dir, 'cache'), { events: 20_000 });
    const ids = [...new Set(Array.from({ length: ENTITIES }, (_, i) => cxEvent(i).entityId))];
    // Redis holds the same values, as JSON text: what a team keeps there today.
    if (redis !== undefined) {
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500);
        const rows = await features.getFeatures(CX_JOB, ['indicators'], part);
        const pipeline = redis.client.pipeline();
        rows.forEach((row) => pipeline.set(row.entityId, JSON.stringify(row.indicators)));
        await pipeline.exec();
      }
    }
    const stubs = join(dir, 'stubs');
    const generated = await runProcess({ name: 'generate.sh', command: join(REPO, 'clients/python/generate.sh'), args: [stubs], timeoutMs: 60_000 });
    if (generated.code !== 0) throw new Error(`generate.sh failed: ${generated.stderr}`);
    for (const batch of BATCHES) {
      const runs = new Map<string, Measured[]>();
      for (let run = 0; run < RUNS; run++) {
        const py = await runProcess({
          name: 'python-reads.py',
          command: PYTHON,
          args: [join(REPO, 'bench/python-reads.py'), cluster.address, CX_JOB, 'indicators', String(SECONDS), String(batch), String(redis?.port ?? 0), ...ids],
          env: { PYTHONPATH: join(REPO, 'clients/python'), EDDY_PYTHON_STUBS: stubs },
          timeoutMs: 20 * SECONDS * 1000 + 60_000,
        });
        if (py.code !== 0) throw new Error(`python-reads.py failed: ${py.stderr}`);
        for (const line of py.stdout.trim().split('\n')) {
          const m = JSON.parse(line) as Measured;
          runs.set(m.name, [...(runs.get(m.name) ?? []), m]);
        }
      }
      const keys = (name: string) => median((runs.get(name) ?? []).map((m) => m.keys_per_s));
      const baseline = keys(batch === 1 ? 'redis GET + json.loads' : 'redis MGET + json.loads');
      console.log(`Python, ${batch} id(s) a call, sequential, ${SECONDS} s each, median of ${RUNS}:`);
      for (const [name, ms] of runs) {
        const line = `  ${name.padEnd(24)} ${Math.round(keys(name)).toString().padStart(7)} keys/s, p50 ${median(ms.map((m) => m.p50_ms)).toFixed(2)} ms, p99 ${median(ms.map((m) => m.p99_ms)).toFixed(2)} ms`;
        const vsStruct = name.endsWith(' json') ? `, ${ratio(keys(name), keys(name.replace(/ json$/, ' struct')))} × struct` : '';
        console.log(`${line}${redis !== undefined && !name.startsWith('redis') ? `; ${ratio(keys(name), baseline)} × Redis` : ''}${vsStruct}`);
      }
    }
  } finally {
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) runMain(pythonClient);

// Where the CPU goes, for the two figures of bench/run.ts that are far from their targets: every
// Eddy process is profiled (bench/cpu-profile-hook.mjs) and each profile summarized by self time,
// per module and per function. `throughput`: customer-experience on 1 worker, the worker's profile.
// `get`: the open-loop Gets, profiles of this client process, the coordinator and both workers.
// Not part of `make bench`; it backs the "what is in the way" lines of docs/BENCHMARKS.md.
//
//   node --import tsx bench/profile.ts throughput [events]   (default 200000)
//   node --import tsx bench/profile.ts cpu [events]          (the same unprofiled: CPU seconds per process only)
//   node --import tsx bench/profile.ts alloc [events]        (the same with the job on the worker's main thread and its
//                                                             allocations sampled: bytes allocated per event, by function)
//   node --import tsx bench/profile.ts gc [events]           (the same unprofiled with V8's GC trace: per heap of the worker,
//                                                             collections, pauses, scavenging on helper threads, and the
//                                                             bytes per event allocated, surviving a scavenge, promoted)
//   node --import tsx bench/profile.ts get [rate]             (default 1000/s, 5 s, as bench/run.ts;
//                                                             BENCH_NO_PROFILE=1: CPU per Get only)
//   node --import tsx bench/profile.ts summary file.cpuprofile [cpu µs/event]   (a kept profile, by category)
// BENCH_PROFILE_DIR keeps the .cpuprofile files (open them in Chrome DevTools).
// The profile spans the worker's life: startup and the tsx compile are in it, a few % of a 200 k-event run.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CX_JOB, cpuSeconds, cxThroughput, getLatency, isMain, machineLine, runMain, threadCpuSeconds } from './lib.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }
interface HeapProfileNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapProfileNode[] }

/** Bytes allocated per event in all, and by the function that allocated them (a sampled heap profile with collected objects). */
function summarizeAllocations(head: HeapProfileNode, events: number, top = 30): string {
  const byFunction = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapProfileNode): void => {
    const frame = node.callFrame;
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(node_modules|dist|worker|core|sdk|bundles)\//, '$1/')}:${frame.lineNumber + 1}`;
    total += node.selfSize;
    byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(head);
  const lines = [`allocated over the worker's life: ${(total / 1e6).toFixed(0)} MB, ${Math.round(total / events)} B per event; by function:`];
  for (const [f, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${((100 * bytes) / total).toFixed(1).padStart(5)} %  ${String(Math.round(bytes / events)).padStart(5)} B/event  ${f}`);
  return lines.join('\n');
}

/** node_modules/<package>, node:<internal>, or the repository folder of a frame. */
function moduleOf(url: string): string {
  if (url === '') return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  const repo = /\/work\/[^/]+\/([^/]+)\//.exec(url) ?? /\/(worker|core|coordinator|sdk|jobs|cli)\//.exec(url);
  if (repo) return repo[1]!;
  return url.replace(/^file:\/\//, '').slice(-40);
}

/**
 * The category of a frame's self time, for the CPU breakdown table of docs/BENCHMARKS.md. By
 * file, so native frames (Map.set, Buffer writes) count under "(native / V8) other" unless V8
 * names them: the categories are a floor of what each part costs, not an exact split.
 */
export function categoryOf(functionName: string, url: string): string {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '__name' || url.includes('/tsx/')) return 'tsx loader (__name wrappers)';
  if (/\/bundles\/[0-9a-f]+\.mjs$/.test(url)) return 'user function (job bundle)';
  if (/\/worker\/state\//.test(url)) return 'state (handles, live cache, overlay, backend)';
  if (/\/worker\/task\/keyed-(task|context|time)\.[jt]s$|\/worker\/task\/call-site\.[jt]s$/.test(url)) return 'keyed task (per record)';
  if (/\/worker\/task\/(record-decoding|source-task|operator-chain|watermark-generator)\.[jt]s$/.test(url) || functionName === 'parse' && url === '') return 'source: JSON decode, operators';
  if (/\/worker\/channel\/|\/core\/record-batch\.[jt]s$|\/worker\/task\/stage-output\.[jt]s$/.test(url)) return 'shuffle (batches, channels)';
  if (/\/worker\/sink\/|\/worker\/checkpoint\/|\/core\/checkpoint-format\.[jt]s$|object-store/.test(url)) return 'sinks and checkpoints';
  if (url.includes('@nats-io/jetstream')) return 'NATS JetStream';
  if (url.includes('@nats-io/')) return 'NATS client';
  if (url.includes('msgpackr')) return 'msgpack';
  if (url.includes('rocksdb-native')) return 'RocksDB binding';
  if (url.includes('murmurhash') || /\/core\/key-groups\.[jt]s$/.test(url)) return 'key hashing';
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return '(native / V8) other';
  return 'other Eddy code';
}

/**
 * Self time by category, in % of the busy (non-idle) samples and, given the process's measured
 * CPU µs per event, that CPU split by the same shares (on a loaded machine the samples' wall
 * time includes time the process waited for a core; the shares hold, the µs would not).
 */
export function categorize(profile: CpuProfile, cpuUsPerEvent?: number): string {
  const byCategory = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const category = categoryOf(node.callFrame.functionName, node.callFrame.url);
    byCategory.set(category, (byCategory.get(category) ?? 0) + hits);
  }
  const total = profile.samples.length;
  const busy = total - (byCategory.get('idle') ?? 0);
  const lines = ['self time by category (% of the busy samples' + (cpuUsPerEvent === undefined ? '' : `; of ${cpuUsPerEvent.toFixed(1)} µs CPU per event`) + '):'];
  for (const [c, n] of [...byCategory].sort((a, b) => b[1] - a[1])) {
    if (c === 'idle') continue;
    const perEvent = cpuUsPerEvent === undefined ? '' : `  ${((n / busy) * cpuUsPerEvent).toFixed(1).padStart(6)} µs/event`;
    lines.push(`  ${((100 * n) / busy).toFixed(1).padStart(5)} %${perEvent}  ${c}`);
  }
  return lines.join('\n');
}

export function summarize(profile: CpuProfile, top = 25): string {
  const total = profile.samples.length;
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(node_modules\/|work\/[^/]+\/)/, '');
    const name = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    const mod = moduleOf(url);
    byModule.set(mod, (byModule.get(mod) ?? 0) + hits);
  }
  const idle = [...byFunction].filter(([f]) => f.startsWith('(idle) ')).reduce((a, [, n]) => a + n, 0);
  const pctOf = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)} %`;
  const lines = [
    `${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s; idle ${pctOf(idle).trim()} (percentages are of all samples)`,
    'self time by module:',
  ];
  for (const [m, n] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  ${pctOf(n)}  ${m}`);
  lines.push('self time by function:');
  for (const [f, n] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pctOf(n)}  ${f}`);
  return lines.join('\n');
}

const HOOK = fileURLToPath(new URL('./cpu-profile-hook.mjs', import.meta.url));

async function readProfile(dir: string, pid: number): Promise<CpuProfile> {
  const files = await readdir(dir);
  if (!files.includes(`${pid}.cpuprofile`)) throw new Error(`no profile of pid ${pid} in ${dir} (${files.join(', ')})`);
  return JSON.parse(await readFile(join(dir, `${pid}.cpuprofile`), 'utf8')) as CpuProfile;
}

/**
 * A process's CPU between two thread listings, by kind of thread. Threads are not named by Node
 * (all are "node" but RocksDB's), so: the main thread (its id is the process's), the busiest other
 * thread (a job's thread when the job is isolated: the inspector profiles neither it nor the
 * rest), RocksDB's threads, and the rest: V8's helpers (parallel scavenges, concurrent marking,
 * compilers) and libuv's pool. A profile counts the garbage collector's pauses of its thread only.
 */
function byThread(pid: number, before: Map<number, { name: string; seconds: number }>, after: Map<number, { name: string; seconds: number }>, events: number): string {
  const used: Array<{ tid: number; name: string; seconds: number }> = [];
  for (const [tid, { name, seconds }] of after) used.push({ tid, name, seconds: seconds - (before.get(tid)?.seconds ?? 0) });
  const sum = (threads: typeof used): number => threads.reduce((total, t) => total + t.seconds, 0);
  const main = used.filter((t) => t.tid === pid);
  const rocksdb = used.filter((t) => t.tid !== pid && t.name.startsWith('rocksdb'));
  const others = used.filter((t) => t.tid !== pid && !t.name.startsWith('rocksdb')).sort((a, b) => b.seconds - a.seconds);
  const parts: Array<[string, number]> = [
    ['main thread', sum(main)],
    ['busiest other thread (the job\'s)', sum(others.slice(0, 1))],
    [`${others.length - 1} other threads (V8's GC and compiler helpers, libuv)`, sum(others.slice(1))],
    ['RocksDB threads', sum(rocksdb)],
  ];
  return parts.map(([what, seconds]) => `${what} ${seconds.toFixed(1)} s (${((1e6 * seconds) / events).toFixed(1)} µs/event)`).join(', ');
}

/**
 * V8's --trace-gc-nvp lines ("[pid:isolate] t ms: pause=… gc=s …", one per collection) summed per
 * heap (isolate): the job's thread is the heap with the most scavenges. Counted from the start of
 * the run, so startup is in it (a few collections).
 */
function summarizeGcTrace(output: string, events: number): string {
  const heaps = new Map<string, Array<Map<string, string>>>();
  for (const line of output.split('\n')) {
    const at = line.indexOf(' ms: pause=');
    if (!line.startsWith('[') || at < 0) continue;
    const fields = new Map<string, string>();
    for (const pair of line.slice(at + 5).split(' ')) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const heap = line.slice(0, line.indexOf(']') + 1);
    const list = heaps.get(heap) ?? [];
    list.push(fields);
    heaps.set(heap, list);
  }
  if (heaps.size === 0) return 'no GC trace in the worker\'s output';
  const sum = (list: Array<Map<string, string>>, field: string): number => list.reduce((total, f) => total + Number.parseFloat(f.get(field) ?? '0'), 0);
  const lines: string[] = [];
  for (const [heap, all] of [...heaps].sort((a, b) => b[1].length - a[1].length)) {
    const scavenges = all.filter((f) => f.get('gc') === 's');
    const full = all.filter((f) => f.get('gc') !== 's');
    lines.push(
      `heap ${heap}: ${scavenges.length} scavenges, ${sum(scavenges, 'pause').toFixed(0)} ms paused + ${sum(scavenges, 'background.scavenge.parallel').toFixed(0)} ms on helper threads; ` +
        `${full.length} mark-compacts, ${sum(full, 'pause').toFixed(0)} ms paused; per event: ${(sum(scavenges, 'allocated') / events).toFixed(0)} B allocated, ` +
        `${(sum(scavenges, 'new_space_survived') / events).toFixed(0)} B survived a scavenge in the young generation, ${(sum(scavenges, 'promoted') / events).toFixed(0)} B promoted`,
    );
  }
  return lines.join('\n');
}

/** This process's own CPU profile, from start() to the returned stop(). */
export function profileSelf(): { stop(): Promise<CpuProfile> } {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  return {
    stop: () =>
      new Promise((resolve, reject) =>
        session.post('Profiler.stop', (err, result) => {
          session.disconnect();
          if (err) reject(err);
          else resolve(result.profile as unknown as CpuProfile);
        }),
      ),
  };
}

async function main(): Promise<void> {
  console.log(machineLine());
  const mode = process.argv[2] ?? 'throughput';
  const dir = process.env.BENCH_PROFILE_DIR ?? (await mkdtemp(join(tmpdir(), 'eddy-profile-')));
  const env = { NODE_OPTIONS: `--import ${HOOK}`, EDDY_CPU_PROFILE_DIR: dir };
  try {
    if (mode === 'throughput' || mode === 'cpu' || mode === 'alloc' || mode === 'gc') {
      // cpu: the same run without the profiler (its overhead), CPU accounting and batch counts only.
      // alloc: the job on the worker's main thread, where the hook samples its allocations.
      // gc: V8's trace of every collection, read from the worker's output (kept whole for it).
      const profiled = mode !== 'cpu';
      const runEnv: Record<string, string> =
        mode === 'alloc'
          ? { NODE_OPTIONS: env.NODE_OPTIONS, EDDY_HEAP_PROFILE_DIR: dir, EDDY_JOB_ISOLATION: 'none' }
          : mode === 'gc'
            ? { NODE_OPTIONS: env.NODE_OPTIONS, EDDY_GC_TRACE: '1' }
            : env;
      if (mode === 'gc') process.env.EDDY_TEST_OUTPUT_LIMIT ??= String(512 * 2 ** 20);
      let workerOutput = '';
      let outputOf: (() => string) | undefined;
      const events = Number(process.argv[3] ?? 200_000);
      let workerPid = 0;
      // CPU seconds of each process over the processing (from submit to the last event).
      const cpu = new Map<string, number>();
      // A second subscriber on the shuffle subjects counts the batches: records per batch.
      let nc: NatsConnection | undefined;
      let batches = 0;
      let batchBytes = 0;
      try {
        // CPU seconds of each process over the processing (from submit to the last event).
        let procs: Array<[string, number]> = [];
        const cpu0 = new Map<string, number>();
        let w0 = 0;
        let threads0 = new Map<number, { name: string; seconds: number }>();
        const run = await cxThroughput(
          { workers: 1, events, frameRecords: Number(process.env.BENCH_FRAME ?? 1), ...(profiled && { env: runEnv }) },
          async (cluster) => {
            workerPid = cluster.workers[0]!.pid;
            outputOf = () => cluster.workers[0]!.output();
            procs = [['worker', workerPid], ['coordinator', cluster.coordinator.pid], ['nats-server', cluster.nats.pid]];
            nc = await connect({ servers: cluster.nats.url });
            nc.subscribe(`eddy.${CX_JOB}.>`, { callback: (_e, m) => void ((batches += 1), (batchBytes += m.data.length)) });
            await nc.flush();
            for (const [name, pid] of procs) cpu0.set(name, await cpuSeconds(pid));
            threads0 = await threadCpuSeconds(workerPid);
            w0 = performance.now();
          },
          async () => {
            const wall = (performance.now() - w0) / 1000;
            for (const [name, pid] of procs) cpu.set(name, (await cpuSeconds(pid)) - cpu0.get(name)!);
            console.log(
              `CPU while processing (${wall.toFixed(1)} s wall, 2 cores): ` +
                [...cpu].map(([name, s]) => `${name} ${s.toFixed(1)} s (${Math.round((1e6 * s) / events)} µs/event)`).join(', '),
            );
            console.log(`the worker's CPU by thread: ${byThread(workerPid, threads0, await threadCpuSeconds(workerPid), events)}`);
            if (mode === 'gc') workerOutput = outputOf?.() ?? '';
          },
        );
        console.log(`customer-experience, 1 worker, ${events} events: ${Math.round(run.eventsPerSecond)} events/s${mode === 'gc' ? ' with the GC trace' : profiled ? ' while profiled' : ''}`);
        console.log(
          `shuffle: ${batches} channel messages (batches and barriers), ${(events / batches).toFixed(2)} records per message, ${Math.round(batchBytes / batches)} B per message`,
        );
      } finally {
        await nc?.close();
      }
      if (mode === 'gc') {
        console.log(summarizeGcTrace(workerOutput, events));
      } else if (mode === 'alloc') {
        const profile = JSON.parse(await readFile(join(dir, `${workerPid}.heapprofile`), 'utf8')) as { head: HeapProfileNode };
        console.log(summarizeAllocations(profile.head, events));
      } else if (profiled) {
        console.log(`worker profile (${join(dir, `${workerPid}.cpuprofile`)}):`);
        const profile = await readProfile(dir, workerPid);
        console.log(summarize(profile));
        console.log(categorize(profile, (1e6 * (cpu.get('worker') ?? 0)) / events));
      }
    } else if (mode === 'get') {
      const rate = Number(process.argv[3] ?? 1000);
      let pids: Array<[string, number]> = [];
      let self: ReturnType<typeof profileSelf> | undefined;
      const profiled = process.env.BENCH_NO_PROFILE === undefined;
      const cpu0 = new Map<string, number>();
      let c0 = 0;
      const result = await getLatency(
        { rate, seconds: 5, ...(profiled && { env }) },
        {
          before: async (cluster) => {
            pids = [['coordinator', cluster.coordinator.pid], ...cluster.workers.map((w): [string, number] => [w.name, w.pid]), ['nats-server', cluster.nats.pid]];
            for (const [name, pid] of pids) cpu0.set(name, await cpuSeconds(pid));
            c0 = process.cpuUsage().user + process.cpuUsage().system;
            if (profiled) self = profileSelf();
          },
          // CPU per Get of every process over the open-loop phase.
          afterGets: async () => {
            const gets = rate * 5;
            const parts = [`client ${Math.round((process.cpuUsage().user + process.cpuUsage().system - c0) / gets)} µs`];
            for (const [name, pid] of pids) parts.push(`${name} ${Math.round((1e6 * ((await cpuSeconds(pid)) - cpu0.get(name)!)) / gets)} µs`);
            console.log(`CPU per Get during the open loop (${gets} Gets): ${parts.join(', ')}`);
          },
        },
      );
      if (!profiled) {
        console.log(`Get at ${rate}/s: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, completed ${Math.round(result.achieved)}/s`);
        return;
      }
      // Stopped after the whole getLatency (the health-check and closed-loop phases are in it too).
      const client = await self!.stop();
      console.log(`Get at ${rate}/s while profiled: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, achieved ${Math.round(result.achieved)}/s`);
      console.log('client (this process, during the Gets):');
      console.log(summarize(client, 15));
      for (const [name, pid] of pids) {
        console.log(`${name} (whole life; the Gets are the last 5 s):`);
        console.log(summarize(await readProfile(dir, pid), 15));
      }
    } else if (mode === 'summary') {
      // A saved profile summarized again: summary <file.cpuprofile> [worker CPU µs per event].
      const profile = JSON.parse(await readFile(process.argv[3]!, 'utf8')) as CpuProfile;
      console.log(summarize(profile));
      console.log(categorize(profile, process.argv[4] === undefined ? undefined : Number(process.argv[4])));
      return;
    } else throw new Error(`mode ${mode}: expected throughput, cpu, alloc, get or summary`);
  } finally {
    if (process.env.BENCH_PROFILE_DIR === undefined) await rm(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) runMain(main);

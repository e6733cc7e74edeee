// `eddy scale N` against a real `eddy up` (nats-server, a coordinator and workers as processes):
// workers are added and removed while the customer-experience job runs, the end result equals
// the expectation computed here (features and exactly-once triggers), and `eddy workers` shows
// each worker's key groups, local state size and assignment epoch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EddyClient } from '../../cli/client.ts';
import { checkpointsOrIdle, cliArgs, REPO_ROOT, freePort, natsServerBinary, runCli, startProcess, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, type ChildHandle } from '../kit/index.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `eddy up --workers <n>` in a temp data dir on free ports until the test stops it. */
async function eddyUp(workers: number): Promise<{ up: ChildHandle; dir: string; addr: string; natsUrl: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-scale-'));
  const natsPort = await freePort();
  const addr = `127.0.0.1:${await freePort()}`;
  const up = await startProcess({
    name: 'eddy up',
    command: process.execPath,
    // Compiled under `make test` (EDDY_DIST), as the other Eddy processes: under tsx, eddy up
    // compiled the CLI at its start and built a compiled tree for its children in its data dir.
    args: cliArgs(['up', '--workers', String(workers), '--nats-port', String(natsPort), '--grpc', addr, '--http', `127.0.0.1:${await freePort()}`, '--data', join(dir, 'data')]),
    cwd: REPO_ROOT,
    env: { EDDY_NATS_SERVER: natsServerBinary() },
    readyLine: /press Ctrl-C to stop/,
    readyTimeoutMs: 90_000,
  });
  return {
    up,
    dir,
    addr,
    natsUrl: `nats://127.0.0.1:${natsPort}`,
    async [Symbol.asyncDispose]() {
      await up.stop(30_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('eddy scale - workers join and leave a running eddy up while the job runs: exact features, exactly-once triggers; eddy workers shows key groups, state size and epoch', { timeout: 300_000 }, async (t) => {
  await using cluster = await eddyUp(1);
  const data = join(cluster.dir, 'data');
  const client = new EddyClient({ address: cluster.addr, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  let reader: NatsConnection | undefined;
  let producer: ReturnType<typeof publishSteadily> | undefined;
  const scale = async (n: number) => {
    const r = await runCli(['scale', String(n), '--data', data], { timeoutMs: 150_000 });
    assert.equal(r.code, 0, `eddy scale ${n} failed: ${r.stderr}`);
    return r.stdout;
  };
  const live = async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').map((w) => w.workerId).sort();
  try {
    await waitFor(async () => (await live()).length === 1, { timeoutMs: 30_000, what: 'one live worker' });
    // eddy up runs NATS with authentication: publish as its producer, read results as its client.
    const login = async (role: string, inboxPrefix: string) => ({ user: `eddy-${role}`, pass: (await readFile(join(data, 'nats-auth', `${role}.password`), 'utf8')).trim(), inboxPrefix });
    nc = await connect({ servers: cluster.natsUrl, ...(await login('producer', '_INBOX.producer')) });
    reader = await connect({ servers: cluster.natsUrl, ...(await login('client', '_INBOX.client')) });
    // 40,000 events: enough for every scale step to land while records flow; on 2 loaded cores
    // 100,000 took longer than the settle deadline (release-size rescaling is in make soak).
    const events = cxEvents(40_000, 1_000);
    await submitCx(client, join(cluster.dir, 'cache'));
    producer = publishSteadily(nc, events, 500);
    // Two more checkpoints, or the job idle with everything in its latest one: eddy up's
    // coordinator takes no periodic checkpoints while idle (the input can be processed before a step).
    const checkpointsProgress = async (what: string) => {
      await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 60_000, what: `the job running ${what}` });
      await checkpointsOrIdle(client, CX_JOB, { timeoutMs: 60_000 });
    };

    await checkpointsProgress('before scaling to 3');
    const out3 = await scale(3);
    assert.match(out3, /^started w-2, w-3$/m);
    assert.match(out3, /^3 workers running: w-1, w-2, w-3$/m);
    await waitFor(async () => JSON.stringify(await live()) === JSON.stringify(['w-1', 'w-2', 'w-3']), { timeoutMs: 30_000, what: 'w-1…w-3 alive' });

    await checkpointsProgress('before scaling to 2');
    const leaving = (await client.listWorkers()).find((w) => w.workerId === 'w-3')!;
    const out2 = await scale(2);
    assert.match(out2, /^stopped w-3$/m);
    assert.match(out2, /^2 workers running: w-1, w-2$/m);
    // The supervisor waited for it: the process is gone when eddy scale returns.
    assert.ok(leaving.pid > 0 && !alive(leaving.pid), `w-3 (pid ${leaving.pid}) has exited`);
    assert.match(await scale(2), /^nothing to do$/m);

    await producer.done;
    await assertCxExactlyOnce(client, reader, cxExpectation(events), 180_000);
    // All processed: the coordinator eddy up starts skips periodic checkpoints while idle.
    await waitFor(async () => (await client.getJob(CX_JOB)).checkpoints?.idle === true, { timeoutMs: 30_000, what: 'the job idle once its input is processed, with no periodic checkpoints' });

    // eddy workers: each owner's key groups (with their count), a state size and the job's epoch.
    const job = await client.getJob(CX_JOB);
    const owners = await waitFor(async () => {
      const ws = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === CX_JOB));
      return ws.length > 0 && ws.every((w) => Number(w.stateBytes) > 0) ? ws : undefined;
    }, { timeoutMs: 30_000, what: 'the owners of key groups to report their state size' });
    const listed = await runCli(['--addr', cluster.addr, 'workers']);
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.split('\n');
    assert.match(lines[0]!, /^WORKER\s+STATE\s+HEARTBEAT\s+PID\s+HOST\s+KEY GROUPS\s+STATE SIZE\s+EPOCH\s+SPLITS/);
    let keyGroups = 0;
    for (const w of owners) {
      const a = w.assignments.find((x) => x.jobId === CX_JOB)!;
      const count = a.keyGroups.reduce((n, r) => n + r.end - r.start + 1, 0);
      keyGroups += count;
      assert.equal(String(a.epoch), String(job.epoch), `${w.workerId} is assigned in the job's epoch`);
      const line = lines.find((l) => l.startsWith(`${w.workerId} `));
      assert.ok(line, `eddy workers lists ${w.workerId}`);
      assert.match(line, new RegExp(`${CX_JOB}:[0-9,-]+ \\(${count}\\)`), `${w.workerId}'s key groups and their count`);
      assert.match(line, /\d+(\.\d)? (B|KiB|MiB)/, `${w.workerId}'s state size`);
      assert.match(line, new RegExp(`${CX_JOB}:${job.epoch}\\b`), `${w.workerId}'s epoch`);
    }
    assert.equal(keyGroups, 128, 'the owners hold all 128 key groups between them');
    t.diagnostic(`restarts ${job.restarts}, epoch ${job.epoch}, owners ${owners.map((w) => `${w.workerId} ${w.stateBytes} B`).join(', ')}`);
  } finally {
    producer?.stop();
    client.close();
    await nc?.close();
    await reader?.close();
  }
});

test('eddy scale - with no eddy up running on the data dir it fails saying so', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-scale-none-'));
  try {
    const r = await runCli(['scale', '2', '--data', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^eddy: no eddy up is running with data dir .*eddy-scale-none-.*start one with `eddy up`/m);
    const bad = await runCli(['scale', 'many', '--data', dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /usage: eddy scale/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The eddy command as a user meets it: every failure is one `eddy: …` line on stderr with a
// non-zero exit (2 for a bad command line, with its usage), never a stack trace; builds write a
// bundle and a manifest; against a running cluster, the server's own message comes through.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCli, startCluster, startNatsServer, waitFor, REPO_ROOT, type Cluster, type RunResult } from '../kit/index.ts';
import { generateIndicators } from '../../jobs/customer-experience/generate.ts';
import { colourOf } from '../../jobs/customer-experience/rules.ts';

const JOB_ENTRY = join(REPO_ROOT, 'jobs', 'customer-experience', 'job.ts');

/** The lines of stderr, without the trailing newline. */
function stderrLines(result: RunResult): string[] {
  return result.stderr.replace(/\n$/, '').split('\n');
}

/** One line `eddy: <message>`, no stack frames. */
function assertOneLineError(result: RunResult, message: RegExp): void {
  const lines = stderrLines(result);
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, /^eddy: /);
  assert.match(lines[0]!, message);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
}

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'eddy-cli-test-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('cli - errors', () => {
  test('cli - an unreachable coordinator is one line naming the address, exit 1', async () => {
    const port = await freePort();
    const result = await runCli(['--addr', `127.0.0.1:${port}`, 'jobs']);
    assert.equal(result.code, 1);
    assertOneLineError(result, new RegExp(`^eddy: cannot reach the coordinator at 127\\.0\\.0\\.1:${port} \\(is it running\\? set --addr or EDDY_ADDR\\)$`));
  });

  test('cli - a coordinator whose gRPC port is taken says so and exits 1 instead of hanging', async () => {
    const nats = await startNatsServer();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen({ host: '127.0.0.1', port: 0 }, resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      // The start connects to NATS and takes its lease before it binds gRPC: those stay open.
      const result = await runCli(['coordinator', '--nats', nats.url, '--grpc', `127.0.0.1:${port}`, '--http', `127.0.0.1:${await freePort()}`, '--store', join(tmp, 'taken-port-store')], { timeoutMs: 30_000 });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^eddy: coordinator failed to start: .*EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}\\b`, 'm'));
    } finally {
      taken.close();
      await nats.stop();
    }
  });

  test('cli - EDDY_ADDR is the default address of every command', async () => {
    const port = await freePort();
    const result = await runCli(['query', 'customer-experience', 'indicators', 'cust-00001'], { env: { EDDY_ADDR: `127.0.0.1:${port}` } });
    assert.equal(result.code, 1);
    assertOneLineError(result, new RegExp(`cannot reach the coordinator at 127\\.0\\.0\\.1:${port}`));
  });

  test('cli - an unknown command prints the usage, exit 2', async () => {
    const result = await runCli(['frobnicate']);
    assert.equal(result.code, 2);
    assert.match(stderrLines(result)[0]!, /^eddy: unknown command 'frobnicate'/);
    assert.match(result.stderr, /Usage: eddy \[options\] \[command\]/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  test('cli - a bad number option names the option and prints the usage, exit 2', async () => {
    const result = await runCli(['up', '--workers', 'many']);
    assert.equal(result.code, 2);
    assert.match(stderrLines(result)[0]!, /^eddy: option '--workers <n>' argument 'many' is invalid/);
    assert.match(result.stderr, /usage: eddy up \[options\]/);
    const negative = await runCli(['--timeout-ms', '-5', 'jobs']);
    assert.equal(negative.code, 2);
    // An option's default from the environment: a bad value names the variable (it printed nothing).
    const fromEnv = await runCli(['worker', '--help'], { env: { EDDY_LIVE_ENTRIES: '-3' } });
    assert.equal(fromEnv.code, 2);
    assert.match(stderrLines(fromEnv)[0]!, /^eddy: EDDY_LIVE_ENTRIES=-3: expected a non-negative integer/);
  });

  test('cli - a missing argument and an unknown view are usage errors, exit 2', async () => {
    const missing = await runCli(['query', 'customer-experience']);
    assert.equal(missing.code, 2);
    assert.match(stderrLines(missing)[0]!, /^eddy: missing required argument 'feature'/);
    const view = await runCli(['query', 'j', 'f', 'e', '--view', 'sideways']);
    assert.equal(view.code, 2);
    assert.match(stderrLines(view)[0]!, /^eddy: option '--view <view>' argument 'sideways' is invalid/);
  });

  test('cli - submitting a bundle without its manifest says where the manifest was expected', async () => {
    const bundle = join(tmp, 'lonely.js');
    await writeFile(bundle, 'export default 1;\n');
    const result = await runCli(['submit', bundle]);
    assert.equal(result.code, 1);
    assertOneLineError(result, /no manifest for .*lonely\.js: expected .*lonely\.manifest\.json/);
  });
});

describe('cli - build', () => {
  test('cli - a syntax error is one line naming file:line, exit 1', async () => {
    const entry = join(tmp, 'broken-job.ts');
    await writeFile(entry, "import { job } from '@eddy/sdk';\nconst oops = ;\nexport default job('broken');\n");
    const result = await runCli(['build', entry, '--out', join(tmp, 'out-broken')]);
    assert.equal(result.code, 1);
    assertOneLineError(result, /broken-job\.ts:2:\d+/);
  });

  test('cli - a missing entry file is one line, exit 1', async () => {
    const result = await runCli(['build', join(tmp, 'nowhere.ts')]);
    assert.equal(result.code, 1);
    assertOneLineError(result, /no such file: .*nowhere\.ts/);
  });

  test('cli - building customer-experience writes the bundle and a manifest naming its stages', async () => {
    const out = join(tmp, 'dist');
    const result = await runCli(['build', JOB_ENTRY, '--out', out]);
    assert.equal(result.code, 0, result.stderr);
    const code = await readFile(join(out, 'customer-experience.js'));
    const manifest = JSON.parse(await readFile(join(out, 'customer-experience.manifest.json'), 'utf8')) as { name: string; stages: { id: string }[]; sources: Array<{ stream: string }> };
    assert.equal(manifest.name, 'customer-experience');
    assert.equal(manifest.sources[0]?.stream, 'indicators');
    assert.ok(manifest.stages.some((s) => s.id === 'indicator-state'), JSON.stringify(manifest.stages));
    const sha256 = createHash('sha256').update(code).digest('hex');
    assert.match(result.stdout, new RegExp(`sha256\\s+${sha256}`));
  });
});

describe('cli - sample generator', () => {
  test('generate - the same options give the same lines, with increasing ts', () => {
    const a = generateIndicators({ events: 2_000, entities: 100, seed: 7 });
    const b = generateIndicators({ events: 2_000, entities: 100, seed: 7 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, generateIndicators({ events: 2_000, entities: 100, seed: 8 }));
    const events = a.map((l) => JSON.parse(l) as { entityId: string; type: string; value: number; ts: number });
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.ts > events[i - 1]!.ts);
    assert.ok(events.every((e) => /^cust-\d{5}$/.test(e.entityId)));
  });

  test('generate - 10-20% of readings are RED and colours flip back and forth', () => {
    const events = generateIndicators({ events: 20_000, entities: 200, seed: 1 }).map((l) => JSON.parse(l) as { entityId: string; type: string; value: number });
    const red = events.filter((e) => colourOf(e) === 'RED').length / events.length;
    assert.ok(red >= 0.1 && red <= 0.2, `RED share ${red}`);
    const last = new Map<string, string>();
    let flips = 0;
    for (const e of events) {
      const key = `${e.entityId}/${e.type}`;
      const colour = colourOf(e);
      if (last.has(key) && last.get(key) !== colour) flips++;
      last.set(key, colour);
    }
    assert.ok(flips > events.length / 10, `only ${flips} colour changes`);
  });

  test('generate - every n-th line is malformed, in rotation', () => {
    const lines = generateIndicators({ events: 30, entities: 5, seed: 3, malformedEvery: 10 });
    assert.throws(() => JSON.parse(lines[9]!));
    assert.equal((JSON.parse(lines[19]!) as Record<string, unknown>).entityId, undefined);
    assert.equal((JSON.parse(lines[29]!) as Record<string, unknown>).entityId, null);
    for (const [i, line] of lines.entries()) if ((i + 1) % 10 !== 0) assert.equal(typeof (JSON.parse(line) as { entityId: unknown }).entityId, 'string');
  });
});

describe('cli - against a running cluster', () => {
  let cluster: Cluster;
  before(async () => {
    // The worker serves direct reads, as under `eddy up` (cli/local-cluster.ts): `eddy query --direct`.
    cluster = await startCluster({ workers: 1, workerArgs: ['--serve', '127.0.0.1:0'] });
  });
  after(async () => {
    await cluster?.stop();
  });
  const eddy = (args: string[], input?: string) => runCli(['--addr', cluster.address, ...args], input === undefined ? {} : { input });

  test('cli - an unknown job is the server NOT_FOUND message, exit 1', async () => {
    const result = await eddy(['job', 'no-such-job']);
    assert.equal(result.code, 1);
    assertOneLineError(result, /no-such-job/);
    assert.match(result.stderr, /not found/i);
  });

  test('cli - publishing to a stream nobody created says that submitting the job creates it', async () => {
    const result = await eddy(['publish', 'nobody-reads-this', '-', '--nats', cluster.nats.url], '{"a":1}\n');
    assert.equal(result.code, 1);
    assertOneLineError(result, /stream nobody-reads-this does not exist: submitting the job that reads it creates it/);
  });

  test('cli - submit, publish, query and cancel the customer-experience job', async () => {
    const submitted = await eddy(['submit', JOB_ENTRY]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const jobId = submitted.stdout.trim();
    assert.equal(jobId, 'customer-experience');

    const lines = generateIndicators({ events: 500, entities: 20, seed: 5, malformedEvery: 100 });
    const published = await eddy(['publish', 'indicators', '-', '--nats', cluster.nats.url], lines.join('\n') + '\n');
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stdout, /^published 500 records to indicators in [\d.]+ s \([\d,]+\/s\)$/m);

    await waitFor(
      async () => {
        const job = await eddy(['job', jobId, '--json']);
        const info = JSON.parse(job.stdout) as { stages: { recordsIn: number; recordsOut: number }[] };
        const [source, keyed] = info.stages;
        return source !== undefined && keyed !== undefined && source.recordsIn >= 500 && keyed.recordsIn === source.recordsOut;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'the job to process 500 records' },
    );

    const query = await eddy(['query', jobId, 'indicators', 'cust-00001', 'nobody', '--json']);
    assert.equal(query.code, 0, query.stderr);
    const [found, missing] = query.stdout.trim().split('\n').map((l) => JSON.parse(l) as { entityId: string; found: boolean; value: unknown });
    assert.equal(found?.entityId, 'cust-00001');
    assert.equal(found?.found, true);
    assert.equal(typeof found?.value, 'object');
    const { checkpointId, ...rest } = missing as unknown as { checkpointId: number };
    assert.deepEqual(rest, { entityId: 'nobody', found: false, value: null, eventTimeUnixMs: null, uncommitted: false });
    assert.equal(typeof checkpointId, 'number');
    assert.equal(typeof (found as unknown as { eventTimeUnixMs: unknown }).eventTimeUnixMs, 'number', 'a found value carries the event time of its last update');

    // Read from the owning worker's serving endpoint: the same values as through the coordinator
    // (a checkpoint may complete between the two reads: its id and `uncommitted` are not compared).
    const direct = await eddy(['query', jobId, 'indicators', 'cust-00001', 'nobody', '--json', '--direct']);
    assert.equal(direct.code, 0, direct.stderr);
    const values = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .map((l) => {
          const { checkpointId: _c, uncommitted: _u, ...v } = JSON.parse(l) as { checkpointId: number; uncommitted: boolean };
          return v;
        });
    assert.deepEqual(values(direct.stdout), values(query.stdout));

    const pretty = await eddy(['query', jobId, 'indicators', 'nobody']);
    assert.equal(pretty.code, 0);
    assert.equal(pretty.stdout.trim(), 'nobody  not found');

    const jobs = await eddy(['jobs']);
    assert.match(jobs.stdout, /customer-experience\s+RUNNING\s+1\s+\d+\s+source-indicators=500 indicator-state=\d+/);
    const workers = await eddy(['workers']);
    assert.match(workers.stdout, /worker-1\s+ALIVE\s+.*customer-experience:0-127/);

    const cancelled = await eddy(['cancel', jobId]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stdout, /CANCELLED/);
  });
});

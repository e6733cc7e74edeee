// Specifications of the test kit itself: if these fail, no other integration test can be trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { freePort, freePorts, publishMessagesSteadily, REPO_ROOT, runProcess, startNatsServer, startProcess, waitFor } from '../kit/index.ts';

/** A `node -e` child: `script` runs as an ES module. */
function nodeScript(script: string): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--input-type=module', '-e', script] };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

const STAY_ALIVE = 'setInterval(() => {}, 1000);';

test('freePort - returns a loopback port that can be bound', async () => {
  const port = await freePort();
  assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `port ${port}`);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('freePorts - distinct ports, however often the kernel hands one out again', async () => {
  for (let round = 0; round < 20; round++) {
    const ports = await freePorts(30);
    assert.equal(ports.length, 30);
    assert.equal(new Set(ports).size, 30, `round ${round}: ${ports.join(', ')}`);
  }
});

test('waitFor - resolves with the first truthy value of the check', async () => {
  let calls = 0;
  const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { timeoutMs: 5_000, what: 'the third call', intervalMs: 1 });
  assert.deepEqual(value, { calls: 3 });
});

test('waitFor - awaits an async check and treats a throw as "not yet"', async () => {
  let calls = 0;
  const value = await waitFor(
    async () => {
      calls++;
      if (calls < 3) throw new Error(`not yet (${calls})`);
      return 'done';
    },
    { timeoutMs: 5_000, what: 'an async check', intervalMs: 1 },
  );
  assert.equal(value, 'done');
  assert.equal(calls, 3);
});

test('waitFor - times out naming what it waited for and the last error of the check', async () => {
  let calls = 0;
  const started = Date.now();
  await assert.rejects(
    waitFor(
      () => {
        calls++;
        throw new Error(`not yet (${calls})`);
      },
      { timeoutMs: 100, what: 'the answer', intervalMs: 10 },
    ),
    (e: Error) => {
      assert.match(e.message, /^timed out after 100ms waiting for the answer; last error: not yet \(\d+\)$/);
      assert.ok(e.cause instanceof Error);
      return true;
    },
  );
  assert.ok(Date.now() - started >= 100, 'gave up before the deadline');
  assert.ok(calls > 1, 'polled more than once');
});

test('waitFor - a check that only returns falsy values times out without an error detail', async () => {
  await assert.rejects(waitFor(() => false, { timeoutMs: 50, what: 'nothing' }), { message: 'timed out after 50ms waiting for nothing' });
});

test('waitFor - a check that never settles does not hold the wait past the deadline', async () => {
  await assert.rejects(
    waitFor(() => new Promise<boolean>(() => {}), { timeoutMs: 100, what: 'a hung request' }),
    { message: 'timed out after 100ms waiting for a hung request; the last check had not settled' },
  );
});

test('waitFor - a slow check is polled less often: the pause is three times the check (at most 1 s), so polling takes at most a quarter of the wait', async () => {
  // A check that takes 100 ms (a whole stream read on a loaded machine): polled every 25 ms it
  // ran 16 times in 2 s; with a pause of 300 ms after each, 5.
  let calls = 0;
  await assert.rejects(
    waitFor(
      async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 100));
        return false;
      },
      { timeoutMs: 2_000, what: 'a slow check' },
    ),
    /timed out after 2000ms waiting for a slow check/,
  );
  assert.ok(calls >= 2 && calls <= 7, `${calls} checks in 2 s`);
});

test('startProcess - resolves once the ready line appears on stdout or stderr, and keeps the output', async () => {
  await using child = await startProcess({
    name: 'ready-on-stderr',
    ...nodeScript(`console.log('booting'); console.error('listening on 1234'); ${STAY_ALIVE}`),
    readyLine: /listening on \d+/,
    readyTimeoutMs: 10_000,
  });
  assert.ok(isAlive(child.pid));
  assert.equal(child.exitStatus(), undefined);
  assert.match(child.output(), /booting/);
  assert.equal(await child.waitForLine(/listening/, 1_000), 'listening on 1234');
});

test('startProcess - waitForLine sees lines printed later, and `since` skips earlier ones', async () => {
  await using child = await startProcess({
    name: 'echo-stdin-less',
    ...nodeScript(`console.log('tick 0'); let i = 0; setInterval(() => console.log('tick ' + ++i), 10);`),
    readyLine: /tick 0/,
    readyTimeoutMs: 10_000,
  });
  assert.equal(await child.waitForLine(/tick 3$/, 5_000), 'tick 3');
  const mark = child.lineCount();
  const line = await child.waitForLine(/tick \d+/, 5_000, { since: mark });
  assert.ok(Number(line.split(' ')[1]) >= mark, `${line} was printed before line ${mark}`);
});

test('startProcess - an exit before the ready line rejects with the exit code and the output', async () => {
  await assert.rejects(
    startProcess({
      name: 'crasher',
      ...nodeScript(`console.error('boom: cannot bind'); process.exit(3);`),
      readyLine: /ready/,
      readyTimeoutMs: 10_000,
    }),
    (e: Error) => {
      assert.match(e.message, /^crasher \(pid \d+\) exited with code 3 before it was ready/);
      assert.match(e.message, /boom: cannot bind/);
      return true;
    },
  );
});

test('startProcess - a process that never gets ready is killed at the deadline', async () => {
  let message = '';
  await assert.rejects(
    startProcess({ name: 'sleeper', ...nodeScript(`console.log('pid=' + process.pid); ${STAY_ALIVE}`), readyLine: /ready/, readyTimeoutMs: 2000 }),
    (e: Error) => {
      message = e.message;
      return /sleeper \(pid \d+\) was not ready within 2000ms/.test(e.message);
    },
  );
  // The pid the error names (the child may print nothing before the deadline on a loaded machine).
  const pid = Number(/\(pid (\d+)\)/.exec(message)?.[1]);
  assert.ok(pid > 0, `no pid in: ${message}`);
  assert.equal(isAlive(pid), false);
});

test('startProcess - a command that does not exist fails to start with a clear error', async () => {
  await assert.rejects(startProcess({ name: 'ghost', command: '/nonexistent/eddy-ghost', args: [] }), /ghost: could not start \/nonexistent\/eddy-ghost: .*ENOENT/);
});

test('startProcess - stop() ends a process with SIGTERM', async () => {
  const child = await startProcess({ name: 'polite', ...nodeScript(`console.log('ready'); ${STAY_ALIVE}`), readyLine: /ready/ });
  await child.stop(5_000);
  assert.deepEqual(await child.exited, { code: null, signal: 'SIGTERM' });
  assert.equal(isAlive(child.pid), false);
});

test('startProcess - stop() escalates to SIGKILL when the process ignores SIGTERM', async () => {
  const child = await startProcess({
    name: 'stubborn',
    ...nodeScript(`process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); ${STAY_ALIVE}`),
    readyLine: /ready/,
  });
  const stopping = child.stop(1_000);
  // The process saw the SIGTERM and survived it ...
  await child.waitForLine(/ignoring SIGTERM/, 5_000);
  await stopping;
  // ... and was then killed.
  assert.deepEqual(child.exitStatus(), { code: null, signal: 'SIGKILL' });
  assert.equal(isAlive(child.pid), false);
  await child.stop(); // idempotent once exited
});

test('startProcess - kill() defaults to SIGKILL and waitForLine then reports the exit', async () => {
  const child = await startProcess({ name: 'victim', ...nodeScript(`console.log('ready'); ${STAY_ALIVE}`), readyLine: /ready/ });
  child.kill();
  assert.deepEqual(await child.exited, { code: null, signal: 'SIGKILL' });
  await assert.rejects(child.waitForLine(/never printed/, 5_000), /victim \(pid \d+\) was killed by SIGKILL before printing a line matching \/never printed\//);
});

test('startProcess - children still running when the test process exits are killed', async () => {
  // A test process that starts a child ignoring SIGTERM and exits without stopping it.
  const processesUrl = pathToFileURL(join(REPO_ROOT, 'test', 'kit', 'processes.ts')).href;
  const script = `
    const { startProcess } = await import(${JSON.stringify(processesUrl)});
    const child = await startProcess({
      name: 'orphan',
      command: process.execPath,
      args: ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"],
      readyLine: /ready/,
    });
    console.log('child-pid=' + child.pid);
    process.exit(0);
  `;
  const result = await runProcess({ name: 'leaky test', command: process.execPath, args: ['--import', 'tsx', '--input-type=module', '-e', script], cwd: REPO_ROOT, timeoutMs: 30_000 });
  assert.equal(result.code, 0, result.stderr);
  const pid = Number(/child-pid=(\d+)/.exec(result.stdout)?.[1]);
  assert.ok(pid > 0, `no child pid in: ${result.stdout}`);
  // The orphan is SIGKILLed synchronously on exit; its new parent then reaps it.
  await waitFor(() => !isAlive(pid), { timeoutMs: 5_000, what: `orphan pid ${pid} to be gone` });
});

test('runProcess - feeds stdin, collects stdout and stderr, returns a non-zero exit code', async () => {
  const result = await runProcess({
    name: 'cat-ish',
    ...nodeScript(`let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => { console.log(s.toUpperCase()); console.error('warned'); process.exit(7); });`),
    input: 'hello eddy',
  });
  assert.deepEqual(result, { code: 7, signal: null, stdout: 'HELLO EDDY\n', stderr: 'warned\n' });
});

test('runProcess - a command past its deadline is killed and rejects', async () => {
  // A shell, not node: it prints before the deadline however loaded the machine (a node child
  // printed nothing within 2 s at load 40).
  await assert.rejects(runProcess({ name: 'hang', command: '/bin/sh', args: ['-c', 'echo started; exec sleep 60'], timeoutMs: 2000 }), /hang \(pid \d+\) did not finish within 2000ms and was killed; stdout tail:\nstarted/);
});

test('nats-server - starts with JetStream usable, and stop() leaves no process or store dir', async () => {
  const nats = await startNatsServer();
  try {
    assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);
    assert.ok(isAlive(nats.pid));
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'KIT', subjects: ['kit.>'] });
      const ack = await jetstream(nc).publish('kit.1', 'hello');
      assert.equal(ack.seq, 1);
      const stored = await jsm.streams.getMessage('KIT', { seq: 1 });
      assert.equal(stored?.string(), 'hello');
      assert.ok(existsSync(join(nats.storeDir, 'jetstream')), 'JetStream writes into the temp store dir');
    } finally {
      await nc.close();
    }
  } finally {
    await nats.stop();
  }
  assert.equal(isAlive(nats.pid), false);
  assert.equal(existsSync(nats.storeDir), false);
  await nats.stop(); // idempotent
});

test('nats-server - two servers run side by side on distinct ports and store dirs', async () => {
  await using a = await startNatsServer();
  await using b = await startNatsServer();
  assert.notEqual(a.port, b.port);
  assert.notEqual(a.storeDir, b.storeDir);
});

test('nats-server - jetstream: false serves core NATS only', async () => {
  await using nats = await startNatsServer({ jetstream: false });
  const nc = await connect({ servers: nats.url });
  try {
    const sub = nc.subscribe('kit.core', { max: 1 });
    nc.publish('kit.core', 'ping');
    for await (const m of sub) assert.equal(m.string(), 'ping');
    await assert.rejects(async () => (await jetstreamManager(nc, { timeout: 1_000 })).getAccountInfo());
  } finally {
    await nc.close();
  }
});

test('nats-server - kill() crashes it, clients see it go, and stop() still cleans up', async () => {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url, reconnect: false });
  nats.kill();
  const closed = await nc.closed();
  assert.ok(closed === undefined || closed instanceof Error);
  await nats.stop();
  assert.equal(isAlive(nats.pid), false);
  assert.equal(existsSync(nats.storeDir), false);
});

test('publishMessagesSteadily - holds back its tail to a trickle and its kept messages until release(), then publishes the rest in order', async () => {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'STEADY', subjects: ['steady.>'] });
    const messages = Array.from({ length: 1_000 }, (_, i) => ['steady.0', String(i)] as const);
    const stored = async () => (await jsm.streams.info('STEADY')).state.messages;
    // 200 a tick up to the last 500, then 20 a tick (25 ticks of 100 ms), the last 10 not before release().
    const producer = publishMessagesSteadily(nc, messages, 200, { heldBack: 500, trickle: 20, kept: 10 });
    await waitFor(async () => (await stored()) >= 500, { timeoutMs: 10_000, what: 'the full-rate part' });
    const trickleStarted = Date.now();
    const before = await waitFor(async () => {
      const n = await stored();
      return n >= 990 ? n : undefined;
    }, { timeoutMs: 20_000, what: 'the trickled part' });
    assert.equal(before, 990, 'the kept messages wait for release()');
    assert.ok(Date.now() - trickleStarted >= 1_000, `the held-back tail trickled (${Date.now() - trickleStarted} ms for 490; 24 ticks at least)`);
    producer.release();
    await producer.done;
    assert.equal(await stored(), 1_000);
    const last = await jsm.streams.getMessage('STEADY', { seq: 1_000 });
    assert.equal(last?.string(), '999', 'in order, the kept ones last');
  } finally {
    await nc.close();
    await nats.stop();
  }
});

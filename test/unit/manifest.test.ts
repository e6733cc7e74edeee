// Job manifests (core/manifest.ts): the coordinator's only view of a job, so it trusts none of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors.ts';
import { MANIFEST_FORMAT_VERSION, findFeature, parseManifest, validateManifest, type JobManifest } from '../../core/manifest.ts';
import { job } from '../../sdk/job.ts';

/** A two-stage job: a source stage keyed by user, and a keyed stage serving one feature. */
function validManifest(): JobManifest {
  return {
    formatVersion: MANIFEST_FORMAT_VERSION,
    name: 'clicks-per-user',
    maxParallelism: 128,
    errorPolicy: 'dead-letter',
    sources: [{ stream: 'CLICKS', partitions: 4, partitionKey: 'userId', format: 'json' }],
    stages: [
      {
        id: 'source',
        kind: 'source',
        source: 0,
        operators: [
          { kind: 'map', name: 'parse' },
          { kind: 'filter', name: 'valid', input: 0 },
          { kind: 'keyBy', name: 'byUser', input: 1, to: { stage: 'count', input: 0 } },
        ],
        sinks: [],
        states: [],
        features: [],
      },
      {
        id: 'count',
        kind: 'keyed',
        inputs: ['keyed'],
        operators: [{ kind: 'process', name: 'countClicks' }],
        sinks: [
          { kind: 'jetstream', subject: 'counts.out', stream: 'COUNTS', input: 0 },
          { kind: 'nats', subject: 'counts.live', input: 0 },
        ],
        states: [
          { name: 'clicks', kind: 'value' },
          { name: 'pages', kind: 'map' },
        ],
        features: [{ name: 'click_count', state: 'clicks' }],
      },
    ],
  };
}

/** A manifest as untyped JSON, to be broken on purpose. */
type Raw = Record<string, any>;
const raw = (): Raw => structuredClone(validManifest()) as Raw;
const stage = (m: Raw, i: number): Raw => m.stages[i];

test('manifest - a valid manifest parses to the same object', () => {
  const m = validManifest();
  assert.deepStrictEqual(parseManifest(JSON.stringify(m)), m);
  assert.doesNotThrow(() => validateManifest(m));
});

test('manifest - a single source stage with no shuffle is valid', () => {
  const m = raw();
  m.stages = [stage(m, 0)];
  stage(m, 0).operators.pop();
  stage(m, 0).sinks.push({ kind: 'nats', subject: 'valid.clicks', input: 1 });
  assert.doesNotThrow(() => validateManifest(m));
});

test('manifest - text that is not JSON is an InvalidArgumentError', () => {
  assert.throws(() => parseManifest('{"formatVersion": 2,'), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'INVALID_ARGUMENT' && /manifest is not valid JSON/.test(e.message));
});

test('manifest - findFeature locates the serving stage and state', () => {
  const m = validManifest();
  const found = findFeature(m, 'click_count');
  assert.equal(found?.stage.id, 'count');
  assert.deepEqual(found?.state, { name: 'clicks', kind: 'value' });
  assert.equal(findFeature(m, 'missing'), undefined);
});

/** [what is wrong, how to break a valid manifest (or the value itself), what the message must name] */
const invalid: Array<[string, unknown | ((m: Raw) => void), RegExp]> = [
  ['null', null, /not an object/],
  ['a string', 'manifest', /not an object/],
  ['a wrong formatVersion', (m: Raw) => (m.formatVersion = 1), /formatVersion 1 is not 2/],
  ['no formatVersion', (m: Raw) => delete m.formatVersion, /formatVersion undefined is not 2/],
  ['a name with a space', (m: Raw) => (m.name = 'my job'), /name "my job" is not a valid job id/],
  ['an empty name', (m: Raw) => (m.name = ''), /name "" is not a valid job id/],
  ['a name that is too long', (m: Raw) => (m.name = 'j'.repeat(65)), /is not a valid job id/],
  ['maxParallelism 0', (m: Raw) => (m.maxParallelism = 0), /maxParallelism 0 outside 1\.\.32768/],
  ['maxParallelism above 32768', (m: Raw) => (m.maxParallelism = 32769), /maxParallelism 32769 outside 1\.\.32768/],
  ['a fractional maxParallelism', (m: Raw) => (m.maxParallelism = 1.5), /maxParallelism 1\.5 outside/],
  ['maxParallelism as a string', (m: Raw) => (m.maxParallelism = '128'), /maxParallelism 128 outside/],
  ['an unknown errorPolicy', (m: Raw) => (m.errorPolicy = 'retry'), /errorPolicy retry is not "fail" or "dead-letter"/],
  ['no sources', (m: Raw) => delete m.sources, /sources must be a non-empty array/],
  ['an empty sources array', (m: Raw) => (m.sources = []), /sources must be a non-empty array/],
  ['a null source', (m: Raw) => (m.sources = [null]), /source 0 is not an object/],
  ['a source stream with a dot', (m: Raw) => (m.sources[0].stream = 'CLICKS.v1'), /source 0 stream "CLICKS\.v1" is not a valid stream name/],
  ['no source stream', (m: Raw) => delete m.sources[0].stream, /source 0 stream undefined is not a valid stream name/],
  ['0 source partitions', (m: Raw) => (m.sources[0].partitions = 0), /source 0 partitions must be 1\.\.1024/],
  ['1025 source partitions', (m: Raw) => (m.sources[0].partitions = 1025), /source 0 partitions must be 1\.\.1024/],
  ['fractional source partitions', (m: Raw) => (m.sources[0].partitions = 2.5), /source 0 partitions must be 1\.\.1024/],
  ['a non-JSON source format', (m: Raw) => (m.sources[0].format = 'avro'), /source 0 format avro is not "json"/],
  ['two sources of one stream', (m: Raw) => m.sources.push({ ...m.sources[0] }), /source 1 reads stream CLICKS, which an earlier source reads too/],
  ['a source without a source stage', (m: Raw) => m.sources.push({ stream: 'VIEWS', partitions: 1, format: 'json' }), /source 1 \(VIEWS\) has no source stage/],
  ['a source stage naming no source', (m: Raw) => (stage(m, 0).source = 3), /source stage source names source 3, which does not exist/],
  ['a keyed stage reading a source', (m: Raw) => (stage(m, 1).source = 0), /keyed stage count cannot read a source/],
  ['a keyed stage without inputs', (m: Raw) => delete stage(m, 1).inputs, /keyed stage count inputs undefined is not one of/],
  ['a keyed stage with three inputs', (m: Raw) => (stage(m, 1).inputs = ['keyed', 'keyed', 'keyed']), /keyed stage count inputs \["keyed","keyed","keyed"\] is not one of/],
  ['a keyed stage whose second input nobody feeds', (m: Raw) => (stage(m, 1).inputs = ['keyed', 'keyed']), /input 1 \(keyed\) of stage count has no upstream operator sending to it/],
  ['a keyBy into a broadcast input', (m: Raw) => {
    stage(m, 1).inputs = ['keyed', 'broadcast'];
    stage(m, 0).operators[2].to.input = 1;
  }, /is a keyBy into input 1 of stage count, which is a broadcast input/],
  ['a broadcast into a source stage', (m: Raw) => (stage(m, 0).operators[2] = { kind: 'broadcast', name: 'rules', input: 1, to: { stage: 'source', input: 0 } }), /sends to stage source, which is not a keyed stage/],
  ['a keyBy without a target', (m: Raw) => delete stage(m, 0).operators[2].to, /operator byUser \(keyBy\) names no target stage/],
  ['a keyBy to a stage that does not exist', (m: Raw) => (stage(m, 0).operators[2].to.stage = 'elsewhere'), /sends to stage "elsewhere", which does not exist/],
  ['a keyBy to an input the stage lacks', (m: Raw) => (stage(m, 0).operators[2].to.input = 1), /sends to input 1 of stage count, which has 1 input/],
  ['a map with a target', (m: Raw) => (stage(m, 0).operators[0].to = { stage: 'count', input: 0 }), /only keyBy and broadcast operators send to another stage/],
  ['an operator taking a later one', (m: Raw) => (stage(m, 0).operators[1].input = 2), /takes input 2, which is not an earlier operator of the stage/],
  ['an operator after a keyBy', (m: Raw) => stage(m, 0).operators.push({ kind: 'map', name: 'after', input: 2 }), /takes the output of keyBy byUser, which sends to another stage/],
  ['a side output of a map', (m: Raw) => (stage(m, 0).operators[1].sideOutput = 'late'), /takes side output late of map parse; only a process operator has side outputs/],
  ['a process in a source stage', (m: Raw) => stage(m, 0).operators.push({ kind: 'process', name: 'p' }), /a process operator can only be the first operator of a keyed stage/],
  ['a keyed sink naming no operator', (m: Raw) => delete stage(m, 1).sinks[0].input, /sink counts\.out names no operator/],
  ['a sink on an operator the stage lacks', (m: Raw) => (stage(m, 1).sinks[0].input = 4), /takes operator 4, which the stage does not have/],
  ['broadcast state without a broadcast input', (m: Raw) => (stage(m, 1).broadcastStates = ['pages']), /declares broadcast state but has no broadcast input/],
  ['a cycle (an edge backwards)', (m: Raw) => {
    stage(m, 1).operators.push({ kind: 'keyBy', name: 'again', input: 0, to: { stage: 'count', input: 0 } });
  }, /sends to stage count, which is not after it/],
  ['no stages', (m: Raw) => (m.stages = []), /stages must be a non-empty array/],
  ['stages as an object', (m: Raw) => (m.stages = {}), /stages must be a non-empty array/],
  ['a stage that is not an object', (m: Raw) => (m.stages = [null]), /stage 0 is not an object/],
  ['an invalid stage id', (m: Raw) => (stage(m, 0).id = 'bad id'), /stage 0 id "bad id" is not a valid id/],
  ['a duplicate stage id', (m: Raw) => (stage(m, 0).id = 'count'), /stage id count appears twice/],
  ['an unknown stage kind', (m: Raw) => (stage(m, 0).kind = 'sink'), /stage source kind sink is not "source" or "keyed"/],
  ['a second stage reading the same source', (m: Raw) => {
    stage(m, 1).kind = 'source';
    stage(m, 1).source = 0;
    delete stage(m, 1).inputs;
  }, /source 0 is read by stages source and count/],
  ['operators that are not an array', (m: Raw) => (stage(m, 0).operators = 'map'), /stage source operators is not an array/],
  ['an unknown operator kind', (m: Raw) => stage(m, 0).operators.push({ kind: 'reduce', name: 'sum' }), /stage source has an unknown operator kind reduce/],
  ['a null operator', (m: Raw) => stage(m, 0).operators.push(null), /stage source has an unknown operator kind undefined/],
  ['an operator without a name', (m: Raw) => (stage(m, 1).operators[0].name = ''), /stage count has an operator without a name/],
  ['sinks that are not an array', (m: Raw) => (stage(m, 1).sinks = null), /stage count sinks is not an array/],
  ['an unknown sink kind', (m: Raw) => stage(m, 1).sinks.push({ kind: 'kafka', subject: 'x' }), /stage count has an unknown sink kind kafka/],
  ['a sink subject with a wildcard', (m: Raw) => (stage(m, 1).sinks[1].subject = 'counts.*'), /stage count sink subject "counts\.\*" is invalid/],
  ['a sink subject with an empty token', (m: Raw) => (stage(m, 1).sinks[1].subject = 'counts..live'), /sink subject "counts\.\.live" is invalid/],
  ['a JetStream sink without a stream', (m: Raw) => delete stage(m, 1).sinks[0].stream, /stage count sink stream undefined is invalid/],
  ['states that are not an array', (m: Raw) => (stage(m, 1).states = {}), /stage count states and features must be arrays/],
  ['features that are not an array', (m: Raw) => delete stage(m, 1).features, /stage count states and features must be arrays/],
  ['a state with an empty name', (m: Raw) => stage(m, 1).states.push({ name: '', kind: 'value' }), /stage count has a state without a valid name/],
  ['a state name over 200 characters', (m: Raw) => stage(m, 1).states.push({ name: 's'.repeat(201), kind: 'value' }), /stage count has a state without a valid name/],
  ['an unknown state kind', (m: Raw) => (stage(m, 1).states[1].kind = 'queue'), /state pages has unknown kind queue/],
  ['a state ttlMs that is not a positive integer', (m: Raw) => (stage(m, 1).states[1].ttlMs = 0), /state pages ttlMs 0 is not a positive integer/],
  ['a state declared twice', (m: Raw) => stage(m, 1).states.push({ name: 'clicks', kind: 'map' }), /stage count declares state clicks twice/],
  ['keyed state on the source stage', (m: Raw) => stage(m, 0).states.push({ name: 'seen', kind: 'value' }), /the source stage source cannot hold keyed state/],
  ['an invalid feature name', (m: Raw) => (stage(m, 1).features[0].name = 'click count'), /stage count feature name "click count" is not a valid id/],
  ['a feature over an undeclared state', (m: Raw) => (stage(m, 1).features[0].state = 'views'), /feature click_count serves state views, which stage count does not declare/],
  ['a feature name used twice', (m: Raw) => stage(m, 1).features.push({ name: 'click_count', state: 'pages' }), /a feature name appears twice/],
  ['a history without retention', (m: Raw) => (stage(m, 1).features[0].history = {}), /feature click_count history\.retentionMs undefined must be an integer in 1\.\./],
  ['a negative history retention', (m: Raw) => (stage(m, 1).features[0].history = { retentionMs: -5 }), /history\.retentionMs -5 must be/],
  ['a fractional history retention', (m: Raw) => (stage(m, 1).features[0].history = { retentionMs: 1.5 }), /history\.retentionMs 1\.5 must be/],
  ['a state name starting with NUL', (m: Raw) => stage(m, 1).states.push({ name: '\u0000h:x', kind: 'value' }), /starts with NUL, which is reserved/],
  ['an empty timestampField', (m: Raw) => (m.sources[0].timestampField = ''), /source 0 timestampField must be a non-empty string/],
];

test('manifest - each invalid manifest is rejected with an InvalidArgumentError naming the problem', () => {
  for (const [what, breakIt, message] of invalid) {
    let manifest: unknown;
    if (typeof breakIt === 'function') {
      const m = raw();
      (breakIt as (m: Raw) => void)(m);
      manifest = m;
    } else {
      manifest = breakIt;
    }
    assert.throws(
      () => validateManifest(manifest),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${what}: threw ${String(e)}, not an InvalidArgumentError`);
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.match(e.message, /^invalid manifest: /, what);
        assert.match(e.message, message, what);
        return true;
      },
      `${what} was accepted`,
    );
    // parseManifest applies the same rules to JSON text.
    if (manifest !== undefined) assert.throws(() => parseManifest(JSON.stringify(manifest)), InvalidArgumentError, what);
  }
});

test('manifest - a later stage that is not an object is an InvalidArgumentError', () => {
  const m = raw();
  m.stages[1] = null;
  assert.throws(() => validateManifest(m), (e: unknown) => e instanceof InvalidArgumentError && /stage 1 is not an object/.test(e.message));
});

test('manifest - a restart strategy is optional, and validated when present', () => {
  const m = raw();
  m.restartStrategy = { kind: 'failure-rate', maxFailures: 3, intervalMs: 60_000, delayMs: 1_000 };
  assert.doesNotThrow(() => validateManifest(m));
  assert.deepEqual(parseManifest(JSON.stringify(m)).restartStrategy, m.restartStrategy);
  assert.equal(parseManifest(JSON.stringify(validManifest())).restartStrategy, undefined);

  m.restartStrategy = { kind: 'exponential-backoff', initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2, jitter: 2, resetAfterMs: 60_000 };
  assert.throws(
    () => validateManifest(m),
    (e: unknown) => e instanceof InvalidArgumentError && /^invalid manifest: restartStrategy\.jitter must be a number 0\.\.1, got 2$/.test(e.message),
  );
  m.restartStrategy = null;
  assert.throws(() => validateManifest(m), /invalid manifest: restartStrategy is not an object/);
});

test('manifest - the SDK puts a restart strategy in the manifest only when the job gives one', () => {
  const plain = job('plain');
  plain.source('EVENTS').map((e) => e);
  assert.equal('restartStrategy' in plain.manifest(), false, 'absent: the coordinator applies its default');

  const strategy = { kind: 'fixed-delay', delayMs: 1_000, maxAttempts: 5 } as const;
  const restarting = job('restarting', { restartStrategy: strategy });
  restarting.source('EVENTS').map((e) => e);
  assert.deepEqual(restarting.manifest().restartStrategy, strategy);

  const invalid = job('invalid', { restartStrategy: { kind: 'fixed-delay', delayMs: -1, maxAttempts: 5 } });
  invalid.source('EVENTS').map((e) => e);
  assert.throws(() => invalid.manifest(), /invalid manifest: restartStrategy\.delayMs/);
});

test('manifest - the SDK declares feature history and the source timestamp field', async () => {
  const { mapState, valueState } = await import('../../sdk/state.ts');
  const latest = mapState<number>('latest');
  const count = valueState<number>('count');
  const j = job('with-history');
  j.source<{ id: string; ts: number }>('EVENTS', { timestampField: 'ts' })
    .keyBy((e) => e.id)
    .process('keep', () => {}, { state: [count], features: { latest: { state: latest, history: { retentionMs: 60_000 } }, count } });
  const m = j.manifest();
  assert.equal(m.sources[0]!.timestampField, 'ts');
  assert.deepEqual(m.stages[1]!.features, [{ name: 'latest', state: 'latest', history: { retentionMs: 60_000 } }, { name: 'count', state: 'count' }]);
  assert.deepEqual(m.stages[1]!.states.map((s) => s.name).sort(), ['count', 'latest'], 'a feature declaration declares its state');
  assert.throws(() => valueState('\u0000m:x'), /must not start with a control character/);
});

test('manifest - asyncMap options get their defaults at build time and are validated', () => {
  const j = job('enrich', { errorPolicy: 'dead-letter' });
  j.source('in').asyncMap(async (x) => x, { retry: { maxAttempts: 4 } }, 'lookup').sink({ kind: 'nats', subject: 'out' });
  const op = j.manifest().stages[0]!.operators[0]!;
  assert.deepEqual(op, {
    kind: 'asyncMap',
    name: 'lookup',
    async: { ordered: true, capacity: 100, timeoutMs: 10_000, retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 2, jitter: 0.1 }, onFailure: 'dead-letter' },
  });
  assert.throws(() => job('bad').source('in').asyncMap(async (x) => x, { capacity: 0 }), /asyncMap: capacity 0 is not an integer in 1\.\.100000/);
  assert.throws(() => job('bad').source('in').asyncMap(async (x) => x, { retry: { multiplier: 0.5 } }), /retry\.multiplier 0\.5 is not a number >= 1/);
  const m = validManifest();
  m.stages[0]!.operators.unshift({ kind: 'asyncMap', name: 'x' });
  assert.throws(() => validateManifest(m), (e: Error) => e instanceof InvalidArgumentError && /operator x: options missing/.test(e.message));
});

test('manifest - a files sink needs a relative path outside jobs/ and positive roll sizes', () => {
  const withSink = (sink: unknown) => {
    const m = validManifest();
    (m.stages[1]!.sinks as unknown[]).push(sink);
    return m;
  };
  const ok = { kind: 'files', path: 'history/cx', format: 'ndjson', rollSizeBytes: 1024, rollIntervalMs: 1000, partitionBy: 'day' };
  validateManifest(withSink(ok));
  for (const [bad, problem] of [
    [{ ...ok, path: '../up' }, /path "\.\.\/up" must be a relative path/],
    [{ ...ok, path: '/abs' }, /path "\/abs" must be a relative path/],
    [{ ...ok, path: 'jobs/x' }, /under jobs\/, which is reserved/],
    [{ ...ok, format: 'csv' }, /format csv is not "ndjson"/],
    [{ ...ok, rollSizeBytes: 0 }, /rollSizeBytes 0 is not a positive integer/],
    [{ ...ok, partitionBy: 'week' }, /partitionBy week is not/],
  ] as const) {
    assert.throws(() => validateManifest(withSink(bad)), (e: Error) => e instanceof InvalidArgumentError && problem.test(e.message), JSON.stringify(bad));
  }
});

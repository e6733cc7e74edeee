// The job graph builder (sdk/job.ts) and what the runtime derives from its manifest
// (core/manifest.ts split ranges, worker/channel/stage-inputs.ts senders and inputs): valid graphs, and
// each misuse refused at build time with a TypeError naming the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { job, mapState, valueState, jetstream, natsSubject, type DataStream } from '../../sdk/index.ts';
import { splitRanges, splitSource, splitCount, validateManifest } from '../../core/manifest.ts';
import { senderNames } from '../../core/subjects.ts';
import { inputResolver, upstreamSenders } from '../../worker/channel/stage-inputs.ts';

interface Click { user: string; page: string }
interface View { user: string; ms: number }
interface Rule { id: string; min: number }

/** Two sources unioned, branched to a sink and a keyBy; a connect; a broadcast; a side-output stream. */
function graphJob() {
  const j = job('g', { maxParallelism: 16 });
  const a = j.source<Click>('clicks_a', { partitions: 2 });
  const b = j.source<Click>('clicks_b', { partitions: 3, timestamp: () => 0 });
  const views = j.source<View>('views', { partitions: 1 });
  const rules = j.source<Rule>('rules', { partitions: 1 });
  const clicks = a.union(b).map((c) => ({ ...c, page: c.page.toLowerCase() }), 'lower');
  clicks.sink(natsSubject('clicks.all'));
  const seen = valueState<number>('seen');
  const joined: DataStream<string> = clicks
    .keyBy((c) => c.user, 'byUser')
    .connect(views.keyBy((v) => v.user))
    .process<string>('join', {
      processElement1: (c, ctx) => ctx.emit(c.page),
      processElement2: (v, ctx) => ctx.output('views', v.ms),
    }, { state: [seen] });
  const ruleState = mapState<Rule>('rules');
  const alerts = joined.keyBy((s) => s).connect(rules.broadcast('rulesOut')).process<string>('alerts', {
    processElement: async (s, ctx) => {
      if ((await ctx.broadcastState(ruleState).get('x')) !== undefined) ctx.emit(s);
    },
    processBroadcastElement: (r, bctx) => bctx.broadcastState(ruleState).put(r.id, r),
  }, { state: [seen], broadcastState: [ruleState] });
  alerts.sink(jetstream('alerts.out', { stream: 'ALERTS' }));
  joined.sideOutput<number>('views').filter((ms) => ms > 0).sink(natsSubject('views.ms'));
  return j;
}

test('job graph - sources, union, branching, connect, broadcast and side outputs make a valid manifest', () => {
  const m = graphJob().manifest();
  assert.doesNotThrow(() => validateManifest(structuredClone(m)));
  assert.deepEqual(m.sources.map((s) => [s.stream, s.partitions]), [['clicks_a', 2], ['clicks_b', 3], ['views', 1], ['rules', 1]]);
  const stage = (id: string) => m.stages.find((s) => s.id === id)!;
  // The map after the union is chained into both source stages, each with its branch to the sink and the keyBy.
  for (const id of ['source-clicks_a', 'source-clicks_b']) {
    assert.deepEqual(stage(id).operators, [
      { kind: 'map', name: 'lower' },
      { kind: 'keyBy', name: 'byUser', input: 0, to: { stage: 'join', input: 0 } },
    ], id);
    assert.deepEqual(stage(id).sinks, [{ kind: 'nats', subject: 'clicks.all', input: 0 }], id);
  }
  assert.deepEqual(stage('source-views').operators, [{ kind: 'keyBy', name: 'keyBy-0', to: { stage: 'join', input: 1 } }]);
  assert.deepEqual(stage('source-rules').operators, [{ kind: 'broadcast', name: 'rulesOut', to: { stage: 'alerts', input: 1 } }]);
  assert.deepEqual(stage('join').inputs, ['keyed', 'keyed']);
  assert.deepEqual(stage('join').operators, [
    { kind: 'process', name: 'join' },
    { kind: 'keyBy', name: 'keyBy-1', input: 0, to: { stage: 'alerts', input: 0 } },
    { kind: 'filter', name: 'filter-2', input: 0, sideOutput: 'views' },
  ]);
  assert.deepEqual(stage('join').sinks, [{ kind: 'nats', subject: 'views.ms', input: 2 }]);
  assert.deepEqual(stage('alerts').inputs, ['keyed', 'broadcast']);
  assert.deepEqual(stage('alerts').broadcastStates, ['rules']);
  assert.deepEqual(stage('alerts').states.map((s) => s.name), ['seen', 'rules']);
  // Every edge points forward: the stages are in topological order.
  const index = new Map(m.stages.map((s, i) => [s.id, i]));
  for (const [i, s] of m.stages.entries()) for (const op of s.operators) if (op.to) assert.ok(index.get(op.to.stage)! > i, `${s.id} → ${op.to.stage}`);

  const plan = graphJob().plan();
  const join = plan.stages.find((s) => s.spec.id === 'join')!;
  assert.equal(join.operators[0]!.inputs?.length, 2, 'processElement1 and processElement2');
  assert.equal(typeof plan.stages.find((s) => s.spec.id === 'source-clicks_b')!.timestamp, 'function');
  assert.equal(plan.stages.find((s) => s.spec.id === 'source-clicks_a')!.timestamp, undefined);
});

test('job graph - one flat split space across sources; senders and inputs of a keyed stage derive from it', () => {
  const m = graphJob().manifest();
  assert.equal(splitCount(m), 7);
  assert.deepEqual(splitRanges(m).map((r) => [r.stageId, r.firstSplit, r.partitions]), [['source-clicks_a', 0, 2], ['source-clicks_b', 2, 3], ['source-views', 5, 1], ['source-rules', 6, 1]]);
  assert.deepEqual({ ...splitSource(m, 4), spec: undefined }, { source: 1, spec: undefined, stageId: 'source-clicks_b', firstSplit: 2, partitions: 3, partition: 2 });
  assert.throws(() => splitSource(m, 7), /split 7 is outside the job's 7 splits/);

  const split = (p: number) => senderNames.split(p, 3);
  const join = upstreamSenders(m, 'join', ['w1', 'w2'], split, 3);
  assert.deepEqual(join.all, ['split0@e3', 'split1@e3', 'split2@e3', 'split3@e3', 'split4@e3', 'split5@e3']);
  assert.deepEqual(join.watermark, ['split2@e3', 'split3@e3', 'split4@e3'], 'only clicks_b carries event time');
  const alerts = upstreamSenders(m, 'alerts', ['w1', 'w2'], split, 3);
  // join's first edge (its keyBy) keeps the task name; the rules split's only edge too.
  assert.deepEqual(alerts.all, ['split6@e3', 'join@w1@e3', 'join@w2@e3']);
  assert.deepEqual(alerts.watermark, ['join@w1@e3', 'join@w2@e3'], 'join carries event time through one of its inputs; rules does not');

  const joinInput = inputResolver(m, 'join');
  assert.deepEqual(joinInput('split1@e3'), { index: 0, kind: 'keyed' });
  assert.deepEqual(joinInput(senderNames.split(3, 3, 12)), { index: 0, kind: 'keyed' }, 'a split that moved keeps its input');
  assert.deepEqual(joinInput('split5@e3'), { index: 1, kind: 'keyed' });
  assert.equal(joinInput('split6@e3'), undefined, 'rules do not feed join');
  assert.equal(joinInput('nonsense'), undefined);
  const alertsInput = inputResolver(m, 'alerts');
  assert.deepEqual(alertsInput('join@w2@e3'), { index: 0, kind: 'keyed' });
  assert.deepEqual(alertsInput('split6@e3'), { index: 1, kind: 'broadcast' });
  assert.equal(alertsInput('join@w2@e3~1'), undefined, 'join has one edge only');
});

test('job graph - a stage that sends to two stages has one sender per edge', () => {
  const j = job('two-ways');
  const s = j.source<Click>('clicks');
  s.keyBy((c) => c.user).process('byUser', () => {});
  s.keyBy((c) => c.page).process('byPage', () => {});
  const m = j.manifest();
  assert.deepEqual(upstreamSenders(m, 'byUser', [], (p) => senderNames.split(p, 1), 1).all, [0, 1, 2, 3].map((p) => `split${p}@e1`));
  assert.deepEqual(upstreamSenders(m, 'byPage', [], (p) => senderNames.split(p, 1), 1).all, [0, 1, 2, 3].map((p) => `split${p}@e1~1`));
  assert.deepEqual(inputResolver(m, 'byPage')('split2@e1~1'), { index: 0, kind: 'keyed' });
  assert.equal(inputResolver(m, 'byPage')('split2@e1'), undefined, "byUser's channel is not byPage's");
});

test('job graph - each misuse is a TypeError at build time naming the problem', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['two sources of one stream', () => {
      const j = job('x');
      j.source('clicks');
      j.source('clicks');
    }, /already has a source reading stream clicks/],
    ['connecting a stream that is not keyed', () => {
      const j = job('x');
      // @ts-expect-error connect is not offered on a plain stream
      j.source('a').connect(j.source('b').keyBy(() => 'k'));
    }, /connect: this stream is not keyed; call keyBy/],
    ['connecting a keyed stream to a plain one', () => {
      const j = job('x');
      // @ts-expect-error a plain stream is neither keyed nor broadcast
      j.source('a').keyBy(() => 'k').connect(j.source('b'));
    }, /expected a keyed stream \(keyBy\) or a broadcast stream \(broadcast\(\)\), got DataStream \(a stream that is not keyed: call keyBy on it first\)/],
    ['a broadcast into a source stage', () => {
      const j = job('x');
      // @ts-expect-error a broadcast connects to a keyed stream only
      j.source('a').connect(j.source('b').broadcast());
    }, /a broadcast cannot go into a source stage/],
    ['a union of streams of two jobs', () => job('x').source<Click>('a').union(job('y').source<Click>('b')), /union: the streams belong to different jobs \(x and y\)/],
    ['a connect of streams of two jobs', () => job('x').source<Click>('a').keyBy((c) => c.user).connect(job('y').source<Click>('b').keyBy((c) => c.user)), /connect: the streams belong to different jobs/],
    ['a keyed stream connected to itself', () => {
      const k = job('x').source<Click>('a').keyBy((c) => c.user);
      k.connect(k);
    }, /cannot be connected to itself/],
    ['a keyBy with no stage after it', () => {
      const j = job('x');
      j.source<Click>('a').keyBy((c) => c.user, 'byUser');
      j.manifest();
    }, /keyBy byUser has no process stage after it/],
    ['a broadcast stream connected to nothing', () => {
      const j = job('x');
      j.source('a').broadcast('rules');
      j.manifest();
    }, /a broadcast stream \(rules\) is connected to no keyed stream/],
    ['two stages of one name', () => {
      const j = job('x');
      const s = j.source<Click>('a');
      s.keyBy((c) => c.user).process('p', () => {});
      s.keyBy((c) => c.page).process('p', () => {});
    }, /already has a stage named p/],
    ['a side output of a stream no process made', () => job('x').source('a').map((v) => v).sideOutput('late'), /only the stream a process stage returns has side outputs/],
    ['a side sink on a source stage', () => job('x').source('a').sideSink('late', natsSubject('late')), /stage source-a is a source stage, which has no side outputs/],
    ['broadcast state that is no map state', () => {
      const j = job('x');
      j.source<Click>('a').keyBy((c) => c.user).connect(j.source('b').broadcast()).process('p', { processElement: () => {}, processBroadcastElement: () => {} }, {
        // @ts-expect-error broadcast state is map state
        broadcastState: [valueState('v')],
      });
    }, /broadcast state v must be a map state/],
    ['one state both keyed and broadcast', () => {
      const j = job('x');
      const rules = mapState('rules');
      j.source<Click>('a').keyBy((c) => c.user).connect(j.source('b').broadcast()).process('p', { processElement: () => {}, processBroadcastElement: () => {} }, { state: [rules], broadcastState: [rules] });
    }, /state rules is declared both as keyed state and as broadcast state/],
    ['a connected process without processElement2', () => {
      const j = job('x');
      // @ts-expect-error processElement2 is required
      j.source<Click>('a').keyBy((c) => c.user).connect(j.source<Click>('b').keyBy((c) => c.user)).process('p', { processElement1: () => {} });
    }, /needs processElement1 and processElement2 functions/],
    ['a broadcast process without processBroadcastElement', () => {
      const j = job('x');
      // @ts-expect-error processBroadcastElement is required
      j.source<Click>('a').keyBy((c) => c.user).connect(j.source('b').broadcast()).process('p', { processElement: () => {} });
    }, /needs processElement and processBroadcastElement functions/],
  ];
  for (const [what, misuse, message] of cases) {
    assert.throws(misuse, (e: unknown) => {
      assert.ok(e instanceof TypeError, `${what}: threw ${String(e)}, not a TypeError`);
      assert.match(e.message, message, what);
      return true;
    }, `${what} was accepted`);
  }
});

test('job graph - checkpoint source positions follow their stream into a job whose sources changed', async () => {
  const { remapSourcePositions, splitStreams } = await import('../../core/manifest.ts');
  const old = job('v1');
  old.source('orders', { partitions: 2 }).keyBy(() => 'k').process('p', () => {});
  const oldManifest = old.manifest();
  const checkpoint = { sources: { 0: 10, 1: 20 }, splitStreams: splitStreams(oldManifest) };
  assert.deepEqual(checkpoint.splitStreams, ['orders.0', 'orders.1']);
  // v2 reads a new stream before the old one, and one partition more of it.
  const v2 = job('v2');
  const rules = v2.source('rules', { partitions: 1 });
  v2.source('orders', { partitions: 3 }).keyBy(() => 'k').connect(rules.broadcast()).process('p', { processElement: () => {}, processBroadcastElement: () => {} });
  const m2 = v2.manifest();
  assert.deepEqual(splitStreams(m2), ['rules.0', 'orders.0', 'orders.1', 'orders.2']);
  assert.deepEqual(remapSourcePositions(checkpoint, m2), { 1: 10, 2: 20 }, 'orders keeps its positions at its new split indexes; rules and orders.2 start afresh');
  // A checkpoint from before several sources (no splitStreams): its splits are the first source's partitions.
  assert.deepEqual(remapSourcePositions({ sources: { 0: 5, 1: 6 } }, oldManifest), { 0: 5, 1: 6 });
});

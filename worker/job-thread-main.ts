// The job's side of an isolated job (worker/isolated-job.ts): runs in a worker thread of its
// own, with its own NATS connection, RocksDB and event loop, the JobRuntime of one job on this
// worker, redeployed in place for every epoch. User code (the bundle) runs only here. A thread
// may start before it has a job (a spare, started ahead because starting one takes seconds on a
// busy machine): its first deploy names the job.
import { parentPort, workerData } from 'node:worker_threads';
import { connectNats } from '../core/nats.ts';
import { inboxPrefixes } from '../core/nats-connect.ts';
import { codecs, type JobCounters } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { createLogger } from '../core/logger.ts';
import { ensureError } from '../core/errors.ts';
import { Telemetry } from '../core/telemetry.ts';
import type { WorkerId } from '../core/ids.ts';
import { compileWorkerOptions } from './options.ts';
import { JobRuntime } from './job-runtime.ts';
import { WorkerMetrics } from './worker-metrics.ts';
import { RemoteObjectStore } from './remote-object-store.ts';
import { MetricsRelay } from './metrics-relay.ts';
import { Phase, TICK_INTERVAL_MS, callSite, installCallSite } from './task/call-site.ts';
import { answerBetweenBatches } from './task/between-batches.ts';
import type { FromJobThread, JobStatus, JobThreadData, QueryMessage, ToJobThread, ToQueryPort } from './job-thread-protocol.ts';
import { RelayedInbox } from './query/query-inbox.ts';

const port = parentPort!;
const data = workerData as JobThreadData;
installCallSite(data.callSite);
// The watchdog's clock: it stops advancing exactly when something holds this thread.
callSite.tick(Date.now());
setInterval(() => callSite.tick(Date.now()), TICK_INTERVAL_MS);
// The thread's own start (compiling and importing the runtime) is not user code: the watchdog
// counts from this first message on.
port.postMessage({ kind: 'status', status: { state: 'NONE', epoch: 0, keyGroups: [], sourceSplits: 0, moving: false, counters: { jobId: '', stages: [] } } } satisfies FromJobThread);

const o = data.options;
const threadLogger = createLogger({ role: 'job', level: o.logLevel }).child({ workerId: o.workerId, thread: 'job' });
const nc = await connectNats({ servers: o.natsServers, name: `eddy-job-thread-${o.workerId}`, auth: o.nats, inboxPrefix: inboxPrefixes.worker(o.workerId) });
const store = new RemoteObjectStore(o.storeUrl, port);
// Histograms and counters go to the worker's Prometheus endpoint through the relay; stage and
// split samples with the status (worker/metrics-relay.ts).
const relay = o.metrics ? new MetricsRelay() : undefined;
// Routed feature queries and watch registrations: subscribed by the worker's thread, handed over on the query port.
const queryInbox = new RelayedInbox(data.queries);
const metrics = new WorkerMetrics(relay?.meter ?? Telemetry.disabled(threadLogger).meter, o.workerId, { measureState: false });
let runtime: JobRuntime | undefined;
/** The job this thread runs, from its first deploy on. */
let jobId = '';
let logger = threadLogger;

function status(): JobStatus {
  const empty: JobCounters = { jobId, stages: [] };
  if (runtime === undefined) return { state: 'NONE', epoch: 0, keyGroups: [], sourceSplits: 0, moving: false, counters: empty };
  return {
    state: runtime.state,
    epoch: runtime.epoch,
    keyGroups: [...runtime.keyGroups],
    sourceSplits: runtime.sourceSplits,
    moving: runtime.moving,
    counters: runtime.counters(),
    ...(o.metrics && { observed: { statePath: runtime.statePath, stages: runtime.stageSamples(), splits: runtime.splitSamples() } }),
  };
}

// Heartbeats carry the job's counters, and the worker's metrics what the job measured: the
// worker's thread reads the latest status.
setInterval(() => {
  const measurements = relay?.flush();
  port.postMessage({ kind: 'status', status: status(), ...(measurements && { measurements }) } satisfies FromJobThread);
}, 250);

async function call(m: Extract<ToJobThread, { kind: 'call' }>): Promise<void> {
  switch (m.method) {
    case 'deploy': {
      if (jobId === '') {
        jobId = m.args[0].jobId;
        logger = threadLogger.child({ jobId });
        // The thread started with an empty environment (it may have been a spare): the job's
        // declared variables, with the worker's values, are its whole environment.
        Object.assign(process.env, m.args[1]);
      } else if (jobId !== m.args[0].jobId) throw new Error(`this thread runs job ${jobId}, not ${m.args[0].jobId}`);
      const options = compileWorkerOptions({ ...o, workerId: o.workerId as WorkerId, logger });
      callSite.phase(Phase.LOADING_BUNDLE);
      try {
        runtime = await JobRuntime.deploy(
          {
            nc,
            queryInbox,
            store,
            options,
            logger,
            metrics,
            reportFailure: (f) => nc.publish(subjects.fromWorker(o.workerId, 'failure'), codecs.failure.encode(f)),
            sendCheckpointAck: (ack) => nc.publish(subjects.fromWorker(o.workerId, 'checkpoint-ack'), codecs.checkpointAck.encode(ack)),
            requestCheckpoint: (jobId, epoch) => nc.publish(subjects.fromWorker(o.workerId, 'checkpoint-request'), codecs.trigger.encode({ jobId, epoch, checkpointId: 0, rematerializeKeyGroups: [] })),
          },
          m.args[0],
          runtime,
        );
      } finally {
        callSite.phase(Phase.IDLE);
      }
      return;
    }
    case 'start':
      return runtime?.start();
    case 'trigger':
      return runtime?.trigger(m.args[0], m.args[1]);
    case 'complete':
      return runtime?.complete(m.args[0]);
    case 'prepareMove':
      return runtime?.prepareMove(m.args[0]);
    case 'stop':
      await runtime?.stop();
      runtime = undefined;
      await nc.drain().catch(() => undefined);
      return;
  }
}

/** A direct feature read (the worker's serving endpoint): answered on the thread's port. */
function answerQuery(m: QueryMessage): void {
  const id = m.id;
  const answered = runtime?.serve(m.request) ?? Promise.resolve({ reply: { values: [], error: `UNAVAILABLE:job ${jobId} is not deployed in this thread`, checkpointId: 0, workerId: o.workerId, epoch: 0 } });
  void answered.then((served) => port.postMessage({ kind: 'queryReply', id, served } satisfies FromJobThread));
}

// Also between the batches of a long stretch of work (worker/task/between-batches.ts): a hot read
// is answered synchronously there, at a point where no batch is half run by the loop that asks.
answerBetweenBatches(data.queries, (m: ToQueryPort) => (m.kind === 'serve' ? answerQuery(m) : queryInbox.onMessage(m)));

port.on('message', (m: ToJobThread) => {
  if (m.kind === 'storeReply') return store.onReply(m);
  // A reply carries what was measured since the last status: after a stop there is no next one.
  void call(m).then(
    () => {
      const measurements = relay?.flush();
      port.postMessage({ kind: 'reply', id: m.id, ok: true, status: status(), ...(measurements && { measurements }) } satisfies FromJobThread);
    },
    (e: unknown) => {
      const measurements = relay?.flush();
      port.postMessage({ kind: 'reply', id: m.id, ok: false, error: ensureError(e).message, status: status(), ...(measurements && { measurements }) } satisfies FromJobThread);
    },
  );
});

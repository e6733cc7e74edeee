// Checkpoint coordination for one job (docs/ARCHITECTURE.md, "Checkpoints"): trigger checkpoint N
// every interval by asking the source tasks to inject barrier N, collect every worker's
// acknowledgement (its uploaded deltas and source positions), write _metadata last — the
// commit point — then publish the exactly-once output and tell the workers N is complete.
// One checkpoint in flight at a time; one that fails or times out is aborted and counted, and
// the next one carries its changes.
//
// Checkpoints are incremental, so a key group's chain of deltas grows with every checkpoint
// that changes it. The trigger of N names the key groups whose chain is longest past
// maxDeltaChain (a few per checkpoint); their owners upload a full snapshot at N, which becomes
// the key group's new base with an empty chain.
import type { NatsConnection } from '@nats-io/transport-node';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { codecs, ForgedMessageError, leaderEpochHeaders, logRejected, type CheckpointAck, type CheckpointPart, type SourcePosition } from '../core/control.ts';
import type { KeyGroupRange } from '../core/key-groups.ts';
import { subjects } from '../core/subjects.ts';
import { encodeMetadata, type CheckpointMetadata } from '../core/checkpoint-format.ts';
import { objectKeys } from '../core/object-keys.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { ensureError, RetryableError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { Span } from '@opentelemetry/api';
import type { CoordinatorMetrics } from './coordinator-metrics.ts';

export interface CheckpointTarget {
  jobId: string;
  epoch: number;
  bundleSha256: string;
  maxParallelism: number;
  /** What each source split reads, "<stream>.<partition>" (CheckpointMetadata.splitStreams). */
  splitStreams?: string[];
  /**
   * Every worker of the epoch: each is sent the trigger (workers with source splits inject
   * barriers; key-group owners learn what to re-materialize) and acknowledges every checkpoint.
   */
  workers: WorkerId[];
  /** Key groups and splits of each worker when the checkpoint is triggered (acks are checked against it). */
  assignment?: ReadonlyMap<string, { keyGroups: readonly KeyGroupRange[]; splits: readonly number[] }>;
}

export interface CompletedCheckpoint {
  id: number;
  metadataKey: string;
  metadata: CheckpointMetadata;
  completedAtUnixMs: number;
  durationMs: number;
  bytes: number;
}

export function newCheckpointStats(): CheckpointStats {
  return { completed: 0, failed: 0, lastFailure: '', lastDurationMs: 0, lastBytes: 0, inFlight: 0, lastCompletedAtMs: 0, lastFailedAtMs: 0, idle: false };
}

export interface CheckpointStats {
  completed: number;
  failed: number;
  lastFailure: string;
  lastDurationMs: number;
  lastBytes: number;
  inFlight: number;
  lastCompletedAtMs: number;
  lastFailedAtMs: number;
  /** Periodic checkpoints paused: nothing happened since the latest one (checkpoint-idle.ts). */
  idle: boolean;
}

/** Deltas a key group's chain may hold before it is re-materialized. */
export const DEFAULT_MAX_DELTA_CHAIN = 16;
/** Key groups re-materialized by one checkpoint, at most. */
export const DEFAULT_MAX_REMATERIALIZED_KEY_GROUPS = 8;

export interface CheckpointCoordinatorOptions {
  nc: NatsConnection;
  store: ObjectStore;
  intervalMs: number;
  timeoutMs: number;
  /** Completed checkpoints kept. */
  retain: number;
  /**
   * A key group whose chain (in any stage) holds more deltas than this is re-materialized: its
   * owner uploads a full snapshot, the chain's new base. @default 16 (DEFAULT_MAX_DELTA_CHAIN)
   */
  maxDeltaChain?: number;
  /**
   * Key groups one checkpoint re-materializes at most, longest chains first, so that one
   * checkpoint does not rewrite the whole state. @default 8 (DEFAULT_MAX_REMATERIALIZED_KEY_GROUPS)
   */
  maxRematerializedKeyGroups?: number;
  logger: Logger;
  /**
   * Checks an acknowledgement before it counts (coordinator/ack-check.ts); throws
   * ForgedMessageError for one that is dropped. `triggered` is the target the checkpoint started with.
   */
  checkAck?: (ack: CheckpointAck, triggered: CheckpointTarget) => void;
  /** The next checkpoint id (ids never repeat, across restarts). */
  nextId(): number;
  target(): CheckpointTarget | undefined;
  latest(): CompletedCheckpoint | null;
  /** The leader epoch every trigger and completion carries (core/control.ts). @default 0 */
  leaderEpoch?: number;
  /**
   * Asked right before _metadata is written: false (the leader lease does not surely hold, the
   * job was let go) aborts the checkpoint, so a deposed leader never commits. @default always true
   */
  mayCommit?(): boolean;
  onCompleted(checkpoint: CompletedCheckpoint): Promise<void>;
  /**
   * A completed checkpoint's exactly-once output is published: until then the garbage collector
   * keeps its output objects, however old the checkpoint gets. @default none
   */
  /** Hands a completed checkpoint's exactly-once output to the job's publisher. */
  publish(metadata: CheckpointMetadata): void;
  /** Counters kept across epochs by the job. */
  stats: CheckpointStats;
  /** Checkpoint metrics and spans. @default none */
  metrics?: CoordinatorMetrics;
  /**
   * True when the job did nothing since completed checkpoint `checkpointId` of the current epoch
   * (coordinator/checkpoint-idle.ts): the periodic checkpoint is skipped until it did. Savepoints,
   * moves and early requests are never skipped. @default never idle
   */
  idleSince?(checkpointId: number): boolean;
}

/** What a checkpoint that carries a move needs (coordinator/rebalancer.ts). */
export interface CheckpointNowOptions {
  /** Workers beyond the target's that take part (a move's old and new owners). */
  workers?: WorkerId[];
  /** Runs with the checkpoint's id before any worker is asked to trigger it. */
  prepare?(checkpointId: number): Promise<void>;
}

interface InFlight {
  id: number;
  epoch: number;
  /** Workers asked to trigger, acknowledge and complete this checkpoint. */
  workers: WorkerId[];
  startedAtMs: number;
  expected: Set<string>;
  acks: Map<string, CheckpointAck>;
  /** When each worker's acknowledgement arrived (the slow worker of a slow checkpoint). */
  ackedAtMs: Map<string, number>;
  jobId: string;
  target: CheckpointTarget;
  span: Span | undefined;
}

/** checkpointNow gave up before its checkpoint began: nothing was asked of any worker, so a retry is safe. */
export class CheckpointNotStartedError extends RetryableError {
  constructor(message: string) {
    super(message, 1000);
  }
}

export class CheckpointCoordinator {
  readonly #o: CheckpointCoordinatorOptions;
  readonly #timer: NodeJS.Timeout;
  #inFlight: InFlight | undefined;
  #completing = false;
  /** Settles once the completion under way has its checkpoint recorded and its output queued, or failed. */
  #completion: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly stats: CheckpointStats;

  constructor(options: CheckpointCoordinatorOptions) {
    this.#o = options;
    this.stats = options.stats;
    this.#timer = setInterval(() => this.#tick(), Math.max(20, Math.min(options.intervalMs, 250)));
    this.#timer.unref();
  }

  #lastTriggerMs = 0;

  #tick(): void {
    if (this.#stopped || this.#completing) return;
    const now = Date.now();
    if (this.#inFlight) {
      const flight = this.#inFlight;
      if (now - flight.startedAtMs > this.#o.timeoutMs) {
        const waiting = [...flight.expected].filter((w) => !flight.acks.has(w));
        this.abort(`checkpoint ${flight.id} timed out after ${this.#o.timeoutMs} ms, waiting for ${waiting.join(', ')}`);
      }
      return;
    }
    if (now - this.#lastTriggerMs < this.#o.intervalMs) return;
    const target = this.#o.target();
    if (!target) return;
    // Idle (no input, nothing emitted since the latest checkpoint of this epoch): no barriers. The
    // next tick after a heartbeat shows activity triggers at once (the interval has passed).
    const latest = this.#o.latest();
    if (!this.#early && latest !== null && latest.metadata.epoch === target.epoch && this.#o.idleSince?.(latest.id) === true) {
      if (!this.#idle) this.#o.logger.debug({ checkpoint: latest.id }, 'job idle: periodic checkpoints paused');
      this.#idle = true;
      this.stats.idle = true;
      this.skippedWhileIdle++;
      return;
    }
    this.#idle = false;
    this.stats.idle = false;
    this.#early = false;
    this.#lastTriggerMs = now;
    void this.trigger(target);
  }

  #idle = false;
  #early = false;
  /** Periodic checkpoints skipped because the job was idle (ticks, not intervals). */
  skippedWhileIdle = 0;

  /** A worker's overlay passed its bound: start the next checkpoint without waiting for the interval. */
  requestEarly(): void {
    this.#lastTriggerMs = 0;
    this.#early = true;
  }

  /** Those waiting for a checkpoint they asked for (savepoints). */
  readonly #waiters = new Map<number, { resolve: (c: CompletedCheckpoint) => void; reject: (e: Error) => void }>();

  /**
   * Takes a checkpoint now (once the one in flight, if any, is done) and resolves when it
   * completes; rejects if it is aborted.
   */
  async checkpointNow(deadlineMs: number, options: CheckpointNowOptions = {}): Promise<CompletedCheckpoint> {
    const until = Date.now() + deadlineMs;
    while (this.#inFlight || this.#completing) {
      if (this.#stopped) throw new Error('the job left its epoch before the checkpoint could start');
      if (Date.now() > until) throw new CheckpointNotStartedError(`no checkpoint could start within ${deadlineMs} ms: checkpoint ${this.#inFlight?.id ?? this.stats.inFlight} is still ${this.#completing ? 'completing' : 'in flight'}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const target = this.#o.target();
    if (!target || this.#stopped) throw new Error('the job is not running');
    this.#lastTriggerMs = Date.now();
    const workers = [...new Set([...target.workers, ...(options.workers ?? [])])];
    const done = new Promise<CompletedCheckpoint>((resolve, reject) => {
      void this.trigger({ ...target, workers }, options.prepare);
      this.#waiters.set(this.#inFlight!.id, { resolve, reject });
    });
    return done;
  }

  /** Starts checkpoint N now. */
  async trigger(target: CheckpointTarget, prepare?: (checkpointId: number) => Promise<void>): Promise<number> {
    const id = this.#o.nextId();
    const flight: InFlight = {
      id,
      epoch: target.epoch,
      workers: target.workers,
      startedAtMs: Date.now(),
      expected: new Set(target.workers),
      acks: new Map(),
      ackedAtMs: new Map(),
      jobId: target.jobId,
      target,
      span: this.#o.metrics?.checkpointStarted(target.jobId, id, target.epoch),
    };
    this.#inFlight = flight;
    this.stats.inFlight = id;
    const rematerializeKeyGroups = this.#keyGroupsToRematerialize();
    if (rematerializeKeyGroups.length > 0) this.#o.logger.debug({ checkpoint: id, keyGroups: rematerializeKeyGroups }, 'checkpoint re-materializes key groups');
    const payload = codecs.trigger.encode({ jobId: target.jobId, checkpointId: id, epoch: target.epoch, rematerializeKeyGroups });
    try {
      await prepare?.(id);
      await Promise.all(
        target.workers.map(async (w) => {
          const ack = codecs.ack.decode((await this.#o.nc.request(subjects.trigger(w), payload, { timeout: this.#o.timeoutMs, headers: leaderEpochHeaders(this.#o.leaderEpoch ?? 0) })).data);
          if (!ack.ok) throw new Error(`worker ${w}: ${ack.error}`);
        }),
      );
    } catch (e) {
      if (this.#inFlight === flight) this.abort(`checkpoint ${id} could not start: ${ensureError(e).message}`);
    }
    return id;
  }

  /** Key groups whose chain in the latest checkpoint is past the bound, longest first, capped. */
  #keyGroupsToRematerialize(): number[] {
    const stages = this.#o.latest()?.metadata.stages;
    if (!stages) return [];
    const maxDeltaChain = this.#o.maxDeltaChain ?? DEFAULT_MAX_DELTA_CHAIN;
    const longest = new Map<number, number>();
    for (const keyGroups of Object.values(stages)) {
      for (const [keyGroup, chain] of Object.entries(keyGroups)) {
        const kg = Number(keyGroup);
        if (chain.deltas.length > maxDeltaChain) longest.set(kg, Math.max(longest.get(kg) ?? 0, chain.deltas.length));
      }
    }
    return [...longest]
      .sort(([a, la], [b, lb]) => lb - la || a - b)
      .slice(0, this.#o.maxRematerializedKeyGroups ?? DEFAULT_MAX_REMATERIALIZED_KEY_GROUPS)
      .map(([kg]) => kg);
  }

  onAck(ack: CheckpointAck): void {
    const flight = this.#inFlight;
    if (!flight || ack.checkpointId !== flight.id || ack.epoch !== flight.epoch) return; // late, or of an aborted checkpoint
    try {
      this.#o.checkAck?.(ack, flight.target);
    } catch (e) {
      // Not even its error counts: a forged error would abort checkpoints at will.
      logRejected(this.#o.logger, e, 'checkpoint acknowledgement');
      return;
    }
    if (ack.error) return this.abort(`checkpoint ${flight.id}: worker ${ack.workerId}: ${ack.error}`);
    // A worker acknowledges a checkpoint once: a second one means somebody else speaks for it
    // (possible with shared worker credentials), and neither can be trusted.
    if (flight.acks.has(ack.workerId)) {
      logRejected(this.#o.logger, new ForgedMessageError(`checkpoint ${flight.id}: a second acknowledgement for worker ${ack.workerId}`), 'checkpoint acknowledgement');
      return this.abort(`checkpoint ${flight.id}: worker ${ack.workerId} acknowledged twice`);
    }
    flight.acks.set(ack.workerId, ack);
    flight.ackedAtMs.set(ack.workerId, Date.now());
    if ([...flight.expected].every((w) => flight.acks.has(w))) {
      let recorded!: () => void;
      this.#completion = new Promise<void>((resolve) => (recorded = resolve));
      void this.#complete(flight, recorded);
    }
  }

  /**
   * Settles once a completion under way (its _metadata may be written already, which makes it the
   * job's latest checkpoint even if the epoch ended meanwhile) is recorded with onCompleted and
   * its output queued, or has failed: a redeploy waits for this before choosing what to restore.
   */
  settled(): Promise<void> {
    return this.#completion;
  }

  async #complete(flight: InFlight, recorded: () => void): Promise<void> {
    this.#completing = true;
    const target = this.#o.target();
    try {
      if (!target) throw new Error('the job stopped while its checkpoint completed');
      const previous = this.#o.latest();
      const metadata: CheckpointMetadata = {
        formatVersion: 1,
        jobId: target.jobId,
        checkpointId: flight.id,
        epoch: flight.epoch,
        bundleSha256: target.bundleSha256,
        createdAtUnixMs: Date.now(),
        savepoint: false,
        maxParallelism: target.maxParallelism,
        sources: { ...(previous?.metadata.sources ?? {}) },
        sourceEventTimes: { ...(previous?.metadata.sourceEventTimes ?? {}) },
        ...(target.splitStreams !== undefined && { splitStreams: [...target.splitStreams] }),
        stages: structuredClone(previous?.metadata.stages ?? {}),
        outputs: [],
        counters: structuredClone(previous?.metadata.counters ?? {}),
      };
      // Parts in checkpoint order (an aborted checkpoint's part precedes the one that carried it).
      const parts: Array<CheckpointPart & { workerId: string }> = [];
      for (const ack of flight.acks.values()) {
        for (const s of ack.sources) {
          metadata.sources[String(s.split)] = Number(s.nextSequence);
          if (s.hasMaxEventTime === true) metadata.sourceEventTimes![String(s.split)] = Number(s.maxEventTimeMs);
        }
        for (const p of ack.parts) parts.push({ ...p, workerId: ack.workerId });
      }
      parts.sort((a, b) => a.checkpointId - b.checkpointId || (a.workerId < b.workerId ? -1 : 1));
      let bytes = 0;
      const bytesByWorker = new Map<string, number>();
      // Stage/key group → id of the checkpoint its new base was taken at: the base already holds
      // the delta of that checkpoint, so only deltas of later parts go on its chain.
      const rebased = new Map<string, number>();
      for (const part of parts) {
        for (const base of part.bases) {
          const stage = (metadata.stages[base.stageId] ??= {});
          for (const s of base.sections) {
            stage[String(s.keyGroup)] = { base: { key: base.key, offset: Number(s.offset), length: s.length, crc32: s.crc32 }, deltas: [] };
            rebased.set(`${base.stageId}/${s.keyGroup}`, part.checkpointId);
            bytes += s.length;
            bytesByWorker.set(part.workerId, (bytesByWorker.get(part.workerId) ?? 0) + s.length);
          }
        }
        for (const delta of part.deltas) {
          const stage = (metadata.stages[delta.stageId] ??= {});
          for (const s of delta.sections) {
            if ((rebased.get(`${delta.stageId}/${s.keyGroup}`) ?? -1) >= part.checkpointId) continue;
            const chain = (stage[String(s.keyGroup)] ??= { base: null, deltas: [] });
            chain.deltas.push({ key: delta.key, offset: Number(s.offset), length: s.length, crc32: s.crc32 });
            bytes += s.length;
            bytesByWorker.set(part.workerId, (bytesByWorker.get(part.workerId) ?? 0) + s.length);
          }
        }
        if (part.outputKey) metadata.outputs!.push(part.outputKey);
        // Each part is in exactly one completed checkpoint: what its stages counted is added once.
        for (const c of part.counters ?? []) {
          const t = (metadata.counters![c.stageId] ??= { recordsIn: 0, recordsOut: 0, deadLetters: 0 });
          t.recordsIn += Number(c.recordsIn);
          t.recordsOut += Number(c.recordsOut);
          t.deadLetters += Number(c.deadLetters);
        }
        for (const f of part.files ?? []) (metadata.files ??= []).push({ stagedKey: f.stagedKey, finalKey: f.finalKey, records: f.records });
      }
      const metadataKey = objectKeys.metadata(target.jobId, flight.id);
      if (this.#o.mayCommit?.() === false) throw new Error('this coordinator no longer surely leads: not committing');
      // _metadata is written last: a checkpoint exists once, and only once, this object does.
      await this.#o.store.put(metadataKey, encodeMetadata(metadata));
      const done: CompletedCheckpoint = { id: flight.id, metadataKey, metadata, completedAtUnixMs: Date.now(), durationMs: Date.now() - flight.startedAtMs, bytes };
      this.#inFlight = undefined;
      this.stats.inFlight = 0;
      this.stats.completed++;
      this.stats.lastCompletedAtMs = Date.now();
      this.stats.lastDurationMs = done.durationMs;
      this.stats.lastBytes = bytes;
      const workers = [...flight.acks.keys()].map((w) => ({ workerId: w, ackMs: (flight.ackedAtMs.get(w) ?? Date.now()) - flight.startedAtMs, bytes: bytesByWorker.get(w) ?? 0 }));
      this.#o.metrics?.checkpointCompleted(flight.span, target.jobId, done.durationMs, bytes, workers);
      this.#o.logger.info({ jobId: target.jobId, checkpoint: flight.id, durationMs: done.durationMs, bytes }, 'checkpoint completed');
      this.#waiters.get(flight.id)?.resolve(done);
      this.#waiters.delete(flight.id);
      await this.#o.onCompleted(done);
      // Output is queued before the workers are told, so a recovery that follows cannot lose it.
      this.#o.publish(metadata);
      recorded();
      const sources = sourcePositions(metadata);
      const complete = codecs.complete.encode({ jobId: target.jobId, checkpointId: flight.id, epoch: flight.epoch, sources });
      await Promise.all(
        flight.workers.map((w) => this.#o.nc.request(subjects.complete(w), complete, { timeout: this.#o.timeoutMs, headers: leaderEpochHeaders(this.#o.leaderEpoch ?? 0) }).catch((e) => this.#o.logger.warn({ workerId: w, err: ensureError(e).message }, 'checkpoint completion not acknowledged'))),
      );
    } catch (e) {
      if (this.#inFlight === flight) this.abort(`checkpoint ${flight.id} could not complete: ${ensureError(e).message}`);
      else this.#o.logger.error({ err: ensureError(e) }, 'after checkpoint completion');
    } finally {
      this.#completing = false;
      recorded();
    }
  }

  /** Aborts the checkpoint in flight, if any, and counts it. */
  abort(reason: string): void {
    if (!this.#inFlight) return;
    this.#o.metrics?.checkpointFailed(this.#inFlight.span, this.#inFlight.jobId, reason);
    this.#waiters.get(this.#inFlight.id)?.reject(new Error(reason));
    this.#waiters.delete(this.#inFlight.id);
    this.#inFlight = undefined;
    this.stats.inFlight = 0;
    this.stats.failed++;
    this.stats.lastFailure = reason;
    this.stats.lastFailedAtMs = Date.now();
    this.#o.logger.warn({ reason }, 'checkpoint aborted');
  }

  stop(): void {
    this.#stopped = true;
    // The stats are the job's and outlive this epoch: a job that was idle is not idle while it
    // recovers (its next epoch checkpoints before it can be idle again: its latest is of this one).
    this.#idle = false;
    this.stats.idle = false;
    for (const w of this.#waiters.values()) w.reject(new Error('the job left its epoch before the checkpoint completed'));
    this.#waiters.clear();
    clearInterval(this.#timer);
    if (this.#inFlight) this.abort(`checkpoint ${this.#inFlight.id} abandoned: the job left epoch ${this.#inFlight.epoch}`);
  }
}

/** Where each split goes on from after a restore to a checkpoint: its sequence and, when it has one, its largest event time. */
export function sourcePositions(metadata: Pick<CheckpointMetadata, 'sources' | 'sourceEventTimes'>): SourcePosition[] {
  return Object.entries(metadata.sources).map(([split, nextSequence]) => {
    const maxEventTimeMs = metadata.sourceEventTimes?.[split];
    return { split: Number(split), nextSequence, ...(maxEventTimeMs !== undefined && { maxEventTimeMs, hasMaxEventTime: true }) };
  });
}

/**
 * Publishes a completed checkpoint's exactly-once output. Message ids are deterministic
 * (object key and line), so publishing it again after a crash is deduplicated by the stream.
 */
export async function publishOutputs(nc: NatsConnection, store: ObjectStore, metadata: CheckpointMetadata): Promise<number> {
  const keys = metadata.outputs ?? [];
  if (keys.length === 0) return 0;
  const publisher = new BulkPublisher(nc);
  const encoder = new TextEncoder();
  let count = 0;
  try {
    for (const key of keys) {
      const lines = new TextDecoder().decode(await store.get(key)).split('\n');
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] === '') continue;
        const [subject, data] = JSON.parse(lines[i]!) as [string, string];
        const h = natsHeaders();
        h.set('Nats-Msg-Id', `${key}:${i}`);
        if (publisher.outstanding >= 1000) await publisher.flush();
        publisher.publishNow(subject, encoder.encode(data), h);
        count++;
      }
    }
    await publisher.flush();
  } finally {
    publisher.close();
  }
  return count;
}

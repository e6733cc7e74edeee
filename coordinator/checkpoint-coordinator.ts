// Checkpoint coordination for one job (ARCHITECTURE.md, "Checkpoints"): trigger checkpoint N
// every interval by asking the source tasks to inject barrier N, collect every worker's
// acknowledgement (its uploaded deltas and source positions), write _metadata last — the
// commit point — then publish the exactly-once output and tell the workers N is complete.
// One checkpoint in flight at a time; one that fails or times out is aborted and counted, and
// the next one carries its changes.
import type { NatsConnection } from '@nats-io/transport-node';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { codecs, type CheckpointAck, type CheckpointPart } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { checkpointLayout, encodeMetadata, type CheckpointMetadata } from '../core/checkpoint-format.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { ensureError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';

export interface CheckpointTarget {
  jobId: string;
  epoch: number;
  bundleSha256: string;
  maxParallelism: number;
  /** Every worker of the epoch: each acknowledges every checkpoint. */
  workers: WorkerId[];
  /** Workers that read source splits: they are asked to inject barriers. */
  sourceWorkers: WorkerId[];
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
  return { completed: 0, failed: 0, lastFailure: '', lastDurationMs: 0, lastBytes: 0, inFlight: 0 };
}

export interface CheckpointStats {
  completed: number;
  failed: number;
  lastFailure: string;
  lastDurationMs: number;
  lastBytes: number;
  inFlight: number;
}

export interface CheckpointCoordinatorOptions {
  nc: NatsConnection;
  store: ObjectStore;
  intervalMs: number;
  timeoutMs: number;
  /** Completed checkpoints kept. */
  retain: number;
  logger: Logger;
  /** The next checkpoint id (ids never repeat, across restarts). */
  nextId(): number;
  target(): CheckpointTarget | undefined;
  latest(): CompletedCheckpoint | null;
  onCompleted(checkpoint: CompletedCheckpoint): Promise<void>;
  /** Counters kept across epochs by the job. */
  stats: CheckpointStats;
}

interface InFlight {
  id: number;
  epoch: number;
  startedAtMs: number;
  expected: Set<string>;
  acks: Map<string, CheckpointAck>;
}

export class CheckpointCoordinator {
  readonly #o: CheckpointCoordinatorOptions;
  readonly #timer: NodeJS.Timeout;
  #inFlight: InFlight | undefined;
  #completing = false;
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
      if (now - this.#inFlight.startedAtMs > this.#o.timeoutMs) this.abort(`checkpoint ${this.#inFlight.id} timed out after ${this.#o.timeoutMs} ms`);
      return;
    }
    if (now - this.#lastTriggerMs < this.#o.intervalMs) return;
    const target = this.#o.target();
    if (!target) return;
    this.#lastTriggerMs = now;
    void this.trigger(target);
  }

  /** Starts checkpoint N now. */
  async trigger(target: CheckpointTarget): Promise<number> {
    const id = this.#o.nextId();
    const flight: InFlight = { id, epoch: target.epoch, startedAtMs: Date.now(), expected: new Set(target.workers), acks: new Map() };
    this.#inFlight = flight;
    this.stats.inFlight = id;
    const payload = codecs.trigger.encode({ jobId: target.jobId, checkpointId: id, epoch: target.epoch });
    try {
      await Promise.all(
        target.sourceWorkers.map(async (w) => {
          const ack = codecs.ack.decode((await this.#o.nc.request(subjects.trigger(w), payload, { timeout: this.#o.timeoutMs })).data);
          if (!ack.ok) throw new Error(`worker ${w}: ${ack.error}`);
        }),
      );
    } catch (e) {
      if (this.#inFlight === flight) this.abort(`checkpoint ${id} could not start: ${ensureError(e).message}`);
    }
    return id;
  }

  onAck(ack: CheckpointAck): void {
    const flight = this.#inFlight;
    if (!flight || ack.checkpointId !== flight.id || ack.epoch !== flight.epoch) return; // late, or of an aborted checkpoint
    if (ack.error) return this.abort(`checkpoint ${flight.id}: worker ${ack.workerId}: ${ack.error}`);
    flight.acks.set(ack.workerId, ack);
    if ([...flight.expected].every((w) => flight.acks.has(w))) void this.#complete(flight);
  }

  async #complete(flight: InFlight): Promise<void> {
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
        stages: structuredClone(previous?.metadata.stages ?? {}),
        outputs: [],
      };
      // Parts in checkpoint order (an aborted checkpoint's part precedes the one that carried it).
      const parts: Array<CheckpointPart & { workerId: string }> = [];
      for (const ack of flight.acks.values()) {
        for (const s of ack.sources) metadata.sources[String(s.split)] = Number(s.nextSequence);
        for (const p of ack.parts) parts.push({ ...p, workerId: ack.workerId });
      }
      parts.sort((a, b) => a.checkpointId - b.checkpointId || (a.workerId < b.workerId ? -1 : 1));
      let bytes = 0;
      for (const part of parts) {
        for (const delta of part.deltas) {
          const stage = (metadata.stages[delta.stageId] ??= {});
          for (const s of delta.sections) {
            const chain = (stage[String(s.keyGroup)] ??= { base: null, deltas: [] });
            chain.deltas.push({ key: delta.key, offset: Number(s.offset), length: s.length, crc32: s.crc32 });
            bytes += s.length;
          }
        }
        if (part.outputKey) metadata.outputs!.push(part.outputKey);
      }
      const metadataKey = checkpointLayout.metadata(target.jobId, flight.id);
      // _metadata is written last: a checkpoint exists once, and only once, this object does.
      await this.#o.store.put(metadataKey, encodeMetadata(metadata));
      const done: CompletedCheckpoint = { id: flight.id, metadataKey, metadata, completedAtUnixMs: Date.now(), durationMs: Date.now() - flight.startedAtMs, bytes };
      this.#inFlight = undefined;
      this.stats.inFlight = 0;
      this.stats.completed++;
      this.stats.lastDurationMs = done.durationMs;
      this.stats.lastBytes = bytes;
      this.#o.logger.info({ jobId: target.jobId, checkpoint: flight.id, durationMs: done.durationMs, bytes }, 'checkpoint completed');
      await this.#o.onCompleted(done);
      await publishOutputs(this.#o.nc, this.#o.store, metadata);
      const complete = codecs.complete.encode({ jobId: target.jobId, checkpointId: flight.id, epoch: flight.epoch });
      await Promise.all(
        target.workers.map((w) => this.#o.nc.request(subjects.complete(w), complete, { timeout: this.#o.timeoutMs }).catch((e) => this.#o.logger.warn({ workerId: w, err: ensureError(e).message }, 'checkpoint completion not acknowledged'))),
      );
    } catch (e) {
      if (this.#inFlight === flight) this.abort(`checkpoint ${flight.id} could not complete: ${ensureError(e).message}`);
      else this.#o.logger.error({ err: ensureError(e) }, 'after checkpoint completion');
    } finally {
      this.#completing = false;
    }
  }

  /** Aborts the checkpoint in flight, if any, and counts it. */
  abort(reason: string): void {
    if (!this.#inFlight) return;
    this.#inFlight = undefined;
    this.stats.inFlight = 0;
    this.stats.failed++;
    this.stats.lastFailure = reason;
    this.#o.logger.warn({ reason }, 'checkpoint aborted');
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.#inFlight) this.abort(`checkpoint ${this.#inFlight.id} abandoned: the job left epoch ${this.#inFlight.epoch}`);
  }
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

// The checkpoint cut of one job on this worker (docs/ARCHITECTURE.md, "Checkpoints"): from the
// trigger of checkpoint N (or its first barrier) until every keyed task of the job has aligned on
// barrier N. Then the state backend freezes delta N, a move at N takes effect, the checkpoint
// writer takes the delta and the exactly-once output taken at the barriers, the aligned tasks go
// on, and the upload ends in the acknowledgement of N to the coordinator.
//
// The round trip of a barrier: KeyedTask (aligned) → JobRuntime → StageOutput.barrier (forwards N,
// takes the output) → CheckpointCuts.taskAligned → StateBackend.freeze → CheckpointWriter.frozen
// and upload → CheckpointAck; the task holds its input until the cut releases it.
//
// One cut at a time. A cut of an older checkpoint still in progress when a newer one begins is
// abandoned: that checkpoint timed out at the coordinator, which aborted it and triggered the
// newer one; its output is carried into the newer cut.
import type { Logger } from '../../core/logger.ts';
import { ensureError } from '../../core/errors.ts';
import type { CheckpointAck, CutCounters, StageCounters as CountedTotals } from '../../core/control.ts';
import type { JobId } from '../../core/ids.ts';
import type { StateBackend } from '../state/index.ts';
import type { CheckpointOutput } from '../sink/index.ts';
import type { CheckpointWriter } from './checkpoint-writer.ts';

/** A split's position at a barrier: the next sequence and the largest event time read before it. */
export interface SplitPosition {
  nextSequence: number;
  maxEventTimeMs: number;
}

/** A checkpoint being cut on this worker. */
export interface Cut {
  id: number;
  /** Keyed tasks aligned on its barrier so far. */
  aligned: number;
  /** Exactly-once sink output before the barrier. */
  output: CheckpointOutput[];
  /** Source split → next sequence and largest event time read, recorded at injection. */
  positions: Map<number, SplitPosition>;
  /** Each stage's counters at its barrier: sources at injection, keyed stages at alignment. */
  counters: Map<string, CountedTotals>;
  /** Lets the aligned tasks go on once the state is frozen. */
  release: () => void;
  released: Promise<void>;
  /** A newer checkpoint's barrier came before this cut was complete: it is never frozen. */
  abandoned: boolean;
}

/** What a stage counts: its totals now (StageCounters.totals in worker/task/). */
export interface CountedStage {
  readonly stageId: string;
  totals(): CountedTotals;
}

export interface CheckpointCutsOptions {
  jobId: JobId;
  epoch: number;
  workerId: string;
  backend: StateBackend;
  writer: CheckpointWriter;
  /** Every stage's counters, in manifest order. */
  counters: ReadonlyMap<string, CountedStage>;
  logger: Logger;
  /** How many keyed tasks align on each barrier (0: the cut completes when the sources injected). */
  keyedTasks(): number;
  /** Where each keyed task's alignment stands, for the log of a slow cut. */
  alignmentStatus(): unknown[];
  /** False once the runtime failed or stopped: no new cut begins. */
  mayCut(): boolean;
  /** The job still runs here: an acknowledgement is sent. */
  running(): boolean;
  /** Barrier N is cut (state frozen at N): a move at N takes effect, before the tasks go on. */
  atCut(checkpointId: number): void;
  /** The cut of checkpointId was abandoned for `newer`. */
  abandoned(checkpointId: number, newer: number): void;
  sendAck(ack: CheckpointAck): void;
  /** Metrics of one upload. */
  uploaded(ms: number, bytes: number, failed: boolean): void;
}

/** Checkpoint cuts whose counters heartbeats report (JobCounters.cuts). */
const CUTS_REPORTED = 8;

/** A cut (alignment) longer than this is logged with where it stands. */
const SLOW_CUT_MS = 5000;

export class CheckpointCuts {
  readonly #o: CheckpointCutsOptions;
  /** The checkpoint being cut: tasks aligned so far, and their release. */
  #cut: Cut | undefined;
  /** Output taken at the barriers of abandoned cuts: the next cut carries it. */
  #carried: CheckpointOutput[] = [];
  /** The newest checkpoint cut (frozen) here; 0: none. */
  #lastCutId = 0;
  /** Source positions per cut checkpoint, until acknowledged. */
  readonly #positions = new Map<number, Map<number, SplitPosition>>();
  #uploading: Promise<void> = Promise.resolve();
  #committing: Promise<void> = Promise.resolve();
  #cutStartedMs = 0;
  /** The counters at each cut since the last checkpoint known completed (that one included), ascending. */
  #cutCounters: CutCounters[] = [];
  /** Logs where a cut stands when it takes long: which channels have not delivered the barrier. */
  readonly #slowCutTimer: NodeJS.Timeout;

  constructor(options: CheckpointCutsOptions) {
    this.#o = options;
    this.#slowCutTimer = setInterval(() => {
      if (!this.#cut || Date.now() - this.#cutStartedMs < SLOW_CUT_MS) return;
      this.#o.logger.warn({ checkpoint: this.#cut.id, ms: Date.now() - this.#cutStartedMs, tasks: this.#o.alignmentStatus() }, 'checkpoint cut is slow');
    }, SLOW_CUT_MS).unref();
  }

  /** The checkpoint being cut, if any. */
  get currentId(): number | undefined {
    return this.#cut?.id;
  }

  /** The newest checkpoint whose cut completed here (0: none). */
  get lastCutId(): number {
    return this.#lastCutId;
  }

  /** The counters at each cut since the last checkpoint known completed, for heartbeats. */
  get cutCounters(): CutCounters[] {
    return this.#cutCounters;
  }

  /**
   * The cut of checkpoint N (begun by its trigger or by its first barrier), or undefined when a
   * newer checkpoint's cut has begun, or N's is done (N's barrier or trigger is stale here: a
   * second cut of N would acknowledge N twice, which the coordinator takes for a forgery and
   * aborts N). A cut of an older checkpoint
   * still in progress is abandoned: that checkpoint timed out at the coordinator, which aborted it
   * and triggered N (docs/ARCHITECTURE.md, "Checkpoints").
   */
  begin(checkpointId: number): Cut | undefined {
    const current = this.#cut;
    if (current?.id === checkpointId) return current;
    if (current !== undefined && current.id > checkpointId) return undefined;
    if (checkpointId <= this.#lastCutId) return undefined;
    if (current !== undefined) this.#abandon(current, checkpointId);
    if (!this.#o.mayCut()) return undefined;
    this.#cutStartedMs = Date.now();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.#cut = { id: checkpointId, aligned: 0, output: this.#carried.splice(0), positions: new Map(), counters: new Map(), release, released, abandoned: false };
    return this.#cut;
  }

  /**
   * The sources injected barrier N (their output `taken`, once an asyncMap in their chain let it
   * pass): it joins the cut, which completes here when no keyed task aligns on N on this worker.
   */
  sourcesInjected(cut: Cut, taken: CheckpointOutput[][], noKeyedAlignment: boolean): void {
    for (const o of taken) this.#outputOf(cut).push(...o);
    if (!cut.abandoned && noKeyedAlignment) this.#complete(cut);
  }

  /**
   * A keyed task aligned on barrier N and forwarded it (StageOutput.barrier took `taken`): once
   * every keyed task has, the state is frozen. Resolves when the task may go on.
   */
  taskAligned(checkpointId: number, taken: CheckpointOutput[] | Promise<CheckpointOutput[]>, stage: CountedStage): Promise<void> {
    const cut = this.begin(checkpointId);
    if (cut === undefined) {
      // The task aligned on a checkpoint this worker abandoned meanwhile: it goes on at once, and
      // what its barrier took comes before the newer cut's barrier.
      const carry = (t: CheckpointOutput[]): void => void (this.#cut?.output ?? this.#carried).push(...t);
      return Array.isArray(taken) ? (carry(taken), Promise.resolve()) : taken.then(carry);
    }
    // The task holds its input from here until the cut: its counters stand at its barrier.
    cut.counters.set(stage.stageId, stage.totals());
    const aligned = (t: CheckpointOutput[]): Promise<void> => {
      if (cut.abandoned) {
        this.#outputOf(cut).push(...t);
        return Promise.resolve();
      }
      cut.output.push(...t);
      if (++cut.aligned === this.#o.keyedTasks()) this.#complete(cut);
      return cut.released;
    };
    // An asyncMap after process(): the barrier waits for the records still in it (the task holds
    // its input meanwhile, so nothing after the barrier enters).
    return Array.isArray(taken) ? aligned(taken) : taken.then(aligned);
  }

  /**
   * Checkpoint N completed: RocksDB takes its delta, and heartbeats need only a few cuts back.
   * Returns the commit, which the caller awaits only if something needs it (a move at N): the
   * coordinator starts the next checkpoint once every worker has answered N's completion, and a
   * loaded worker took seconds to write a large delta while the next one grew with the wait. The
   * store's write queue keeps the order (the next commit, a key group's drop, import or export, a
   * redeploy's commit come after this one), and the delta stays readable until it is written.
   */
  completed(checkpointId: number): Promise<void> {
    const { backend } = this.#o;
    const commit = checkpointId > backend.committedCheckpointId && checkpointId <= backend.frozenCheckpointId ? backend.commit(checkpointId) : Promise.resolve();
    this.#committing = commit.catch(() => undefined);
    // The coordinator counts from a recent completed checkpoint that every heartbeat is past: a
    // few cuts back are enough (one per checkpoint interval, heartbeats every half second).
    if (this.#cutCounters.length > CUTS_REPORTED) this.#cutCounters = this.#cutCounters.slice(-CUTS_REPORTED);
    return commit;
  }

  /** Resolves once the latest commit begun by completed() is done (or failed). */
  whenCommitted(): Promise<void> {
    return this.#committing;
  }

  /** Lets the tasks aligned on the current cut go on (the runtime is stopping). */
  releaseCurrent(): void {
    this.#cut?.release();
  }

  /** Resolves once the uploads begun so far are done (failed ones included). */
  whenUploaded(): Promise<void> {
    return this.#uploading.catch(() => undefined);
  }

  close(): void {
    clearInterval(this.#slowCutTimer);
  }

  /**
   * Gives up the cut of an aborted checkpoint for a newer one: nothing is frozen at it (its
   * changes go into the newer delta), the tasks aligned on it go on, and the exactly-once output
   * taken at its barriers goes with the newer cut. A move prepared at it cannot happen: the job
   * recovers, as the coordinator has it do when a move's checkpoint fails.
   */
  #abandon(cut: Cut, newer: number): void {
    this.#o.logger.warn({ checkpoint: cut.id, newer, alignedTasks: cut.aligned, ms: Date.now() - this.#cutStartedMs }, 'checkpoint cut abandoned for a newer one');
    cut.abandoned = true;
    this.#cut = undefined;
    this.#carried.push(...cut.output);
    cut.output = [];
    cut.release();
    this.#o.abandoned(cut.id, newer);
  }

  /** Where output taken at a barrier of `cut` goes: the cut's, or after it was abandoned, the newer cut's. */
  #outputOf(cut: Cut): CheckpointOutput[] {
    if (!cut.abandoned) return cut.output;
    return this.#cut?.output ?? this.#carried;
  }

  #complete(cut: Cut): void {
    this.#cut = undefined;
    this.#lastCutId = cut.id;
    const { backend, writer } = this.#o;
    // Everything before barrier N is in the overlay and nothing after it: freeze delta N.
    if (cut.id > backend.frozenCheckpointId) backend.freeze(cut.id);
    // A move at N takes effect here, before the tasks go on past barrier N.
    this.#o.atCut(cut.id);
    writer.frozen(cut.id, cut.output, this.#countCut(cut));
    this.#positions.set(cut.id, cut.positions);
    cut.release();
    this.#uploading = this.#uploading.then(() => this.#upload(cut.id));
  }

  /**
   * What the stages counted between the previous cut of this runtime and this one (a checkpoint
   * adds it to the job's totals), and the counters at this cut for heartbeats.
   */
  #countCut(cut: Cut): CountedTotals[] {
    const previous = this.#cutCounters[this.#cutCounters.length - 1];
    const stages = [...this.#o.counters.values()].map((c) => cut.counters.get(c.stageId) ?? c.totals());
    this.#cutCounters.push({ checkpointId: cut.id, stages });
    return stages.map((s) => {
      const before = previous?.stages.find((p) => p.stageId === s.stageId);
      return { ...s, recordsIn: s.recordsIn - (before?.recordsIn ?? 0), recordsOut: s.recordsOut - (before?.recordsOut ?? 0), deadLetters: s.deadLetters - (before?.deadLetters ?? 0) };
    });
  }

  async #upload(checkpointId: number): Promise<void> {
    const { jobId, epoch, workerId, writer } = this.#o;
    const ack: CheckpointAck = { jobId, checkpointId, epoch, workerId, sources: [], parts: [], error: '' };
    for (const [split, { nextSequence, maxEventTimeMs }] of this.#positions.get(checkpointId) ?? []) {
      ack.sources.push({ split, nextSequence, ...(Number.isFinite(maxEventTimeMs) && { maxEventTimeMs, hasMaxEventTime: true }) });
    }
    this.#positions.delete(checkpointId);
    const started = performance.now();
    const bytesBefore = writer.bytesUploaded;
    try {
      ack.parts = await writer.upload(checkpointId);
      this.#o.uploaded(performance.now() - started, writer.bytesUploaded - bytesBefore, false);
    } catch (e) {
      const err = ensureError(e);
      this.#o.logger.warn({ checkpoint: checkpointId, err: err.message }, 'checkpoint upload failed');
      this.#o.uploaded(performance.now() - started, 0, true);
      ack.error = `upload failed: ${err.message}`;
    }
    if (this.#o.running()) this.#o.sendAck(ack);
  }
}

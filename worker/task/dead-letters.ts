// Bad records never stop a job silently and never crash a worker (docs/ARCHITECTURE.md, "Sources
// and sinks"): they go to eddy.dlq.<job> (kept by the EDDY_DLQ stream) with the reason.
//
// Dead letters are exactly-once like the exactly-once sinks (worker/sink/sinks.ts): each task keeps
// what it dead-lettered since its last barrier, and barrier N takes it into checkpoint N's
// output, which the coordinator publishes once N completes, with deterministic Nats-Msg-Ids. A
// record dead-lettered before the last completed checkpoint is therefore never dead-lettered
// again after a recovery (its replay starts after it), and one dead-lettered after it is
// published only by the checkpoint that follows its replay. They arrive about one checkpoint
// interval after the record.
import type { JobId } from '../../core/ids.ts';
import { subjects } from '../../core/subjects.ts';
import type { CheckpointOutput } from '../sink/index.ts';
import type { StageCounters } from './stage-counters.ts';

/** A source record's place: its message's stream sequence, and its line when the message is a frame. */
export interface SourcePosition {
  stream: string;
  sequence: number;
  index?: number;
}

export interface DeadLetter {
  stageId: string;
  reason: string;
  /** The record as received: the raw payload for undecodable input, else the value. */
  record: unknown;
  operator?: string;
  keyGroup?: number;
  stack?: string;
  /** Where the record came from, when it came from a source (`index`: its line in a frame). */
  source?: SourcePosition;
}

/** The dead letters of one task (a source split, or a keyed stage on a worker), held per checkpoint. */
export class DeadLetters {
  readonly #subject: string;
  readonly #jobId: JobId;
  readonly #workerId: string;
  #held: CheckpointOutput[] = [];

  constructor(jobId: JobId, workerId: string) {
    this.#jobId = jobId;
    this.#workerId = workerId;
    this.#subject = subjects.deadLetter(jobId);
  }

  publish(letter: DeadLetter, counters: StageCounters): void {
    counters.deadLetters++;
    const payload = { job: this.#jobId, worker: this.#workerId, at: new Date().toISOString(), ...letter };
    this.#held.push({ subject: this.#subject, data: JSON.stringify(payload) });
  }

  /** What was dead-lettered since the last call: part of the checkpoint whose barrier is being cut. */
  take(): CheckpointOutput[] {
    const out = this.#held;
    this.#held = [];
    return out;
  }
}

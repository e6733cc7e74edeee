// Bad records never stop a job silently and never crash a worker (docs/ARCHITECTURE.md, "Sources
// and sinks"): they go to eddy.dlq.<job> (kept by the EDDY_DLQ stream) with the reason.
import type { NatsConnection } from '@nats-io/transport-node';
import { subjects } from '../../core/subjects.ts';
import type { JobId } from '../../core/ids.ts';
import type { StageCounters } from './stage-counters.ts';

export interface DeadLetter {
  stageId: string;
  reason: string;
  /** The record as received: the raw payload for undecodable input, else the value. */
  record: unknown;
  operator?: string;
  keyGroup?: number;
  stack?: string;
  /** Where the record came from, when it came from a source. */
  source?: { stream: string; sequence: number };
}

export class DeadLetters {
  readonly #nc: NatsConnection;
  readonly #subject: string;
  readonly #jobId: JobId;
  readonly #workerId: string;

  constructor(nc: NatsConnection, jobId: JobId, workerId: string) {
    this.#nc = nc;
    this.#jobId = jobId;
    this.#workerId = workerId;
    this.#subject = subjects.deadLetter(jobId);
  }

  publish(letter: DeadLetter, counters: StageCounters): void {
    counters.deadLetters++;
    const payload = { job: this.#jobId, worker: this.#workerId, at: new Date().toISOString(), ...letter };
    this.#nc.publish(this.#subject, JSON.stringify(payload), { headers: undefined });
  }
}

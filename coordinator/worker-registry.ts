// Membership: workers register over NATS and heartbeat with their counters. A worker silent for
// workerProbeMs is probed: "no responders" means its process is gone (its NATS connection closed
// and took its subscriptions along), so it is dead at once; one that stays silent for
// workerTimeoutMs is dead whatever the probe says (docs/ARCHITECTURE.md, "Failure and scaling").
//
// Who may claim an id (README, "Security"). A worker's channel public key is what channel keys
// are sealed to, so whoever registers an id's key can sign that id's batches. Two rules:
// - Admission: an id that is unknown or dead is taken only once the process listening on the id's
//   own control subjects (eddy.ctl.worker.<id>.ping) answers with the key being registered. With
//   per-worker NATS users only that worker's user may subscribe there, so nobody can claim an id
//   whose credentials it does not hold, not even one that has never registered.
// - No key change while alive: a registration or heartbeat for an ALIVE id with another key than
//   the registered one is refused (and does not count as a sign of life); the id's new key is taken
//   only once the id is declared dead (silence, a probe nobody answers or answered with another
//   key, a deregistration), which is logged and recovers its jobs. A restarted worker under the
//   same id is such a case: its old process no longer answers probes with the old key. With
//   shared worker credentials this turns a silent key swap into a visible death and recovery; it
//   cannot stop a holder of them from forging a deregistration first: per-worker users do.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { checkSender, codecs, ForgedMessageError, logRejected, type Heartbeat, type JobCounters } from '../core/control.ts';
import { isPublicKey } from '../core/channel-key.ts';
import { subjects } from '../core/subjects.ts';
import { parseWorkerId, type WorkerId } from '../core/ids.ts';
import { ensureError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

export type WorkerLiveness = 'ALIVE' | 'DEAD';

/** How long an unknown id's control subject has to answer before its claim is refused (it is retried). */
const ADMISSION_PROBE_MS = 2_000;

/** The key a worker sends, checked to be an X25519 public key; undefined when it sends none. */
function checkedKey(id: WorkerId, key: Uint8Array | undefined): Uint8Array | undefined {
  if (key === undefined || key.length === 0) return undefined;
  if (!isPublicKey(key)) throw new ForgedMessageError(`worker ${id} sent a channel public key of ${key.length} bytes that is no X25519 key`);
  return new Uint8Array(key);
}

/** Refuses a message of a live worker with another key than the one it registered. */
function sameKey(w: WorkerRecord, key: Uint8Array | undefined, what: string): void {
  const registered = w.channelPublicKey;
  const same = registered === undefined ? key === undefined : key !== undefined && Buffer.from(registered).equals(Buffer.from(key));
  if (!same) throw new ForgedMessageError(`a ${what} of live worker ${w.id} with another channel key than the one it registered: refused until the id is dead`);
}

export interface WorkerRecord {
  id: WorkerId;
  state: WorkerLiveness;
  pid: number;
  host: string;
  registeredAtMs: number;
  lastHeartbeatMs: number;
  /** Latest counters per job, from the last heartbeat. */
  jobs: Map<string, JobCounters>;
  runningJobs: Set<string>;
  /** Asked to leave (SIGTERM): alive, handing its work over, takes no new work. */
  leaving: boolean;
  /** Bytes of the worker's local state, from its last heartbeat. */
  stateBytes: number;
  /** Resident set size and CPU (cores) from its last heartbeat; 0 until one reports them. */
  rssBytes?: number;
  cpuCores?: number;
  /** The worker's X25519 public key (Register, Heartbeat): channel keys are sealed to it (core/channel-key.ts). */
  channelPublicKey?: Uint8Array;
  /** host:port of its feature-serving endpoint (Register, Heartbeat); '' when it serves none. */
  servingAddress: string;
}

export interface WorkerRegistryOptions {
  nc: NatsConnection;
  heartbeatIntervalMs: number;
  workerTimeoutMs: number;
  /** Silence after which the worker is probed (at most workerTimeoutMs). */
  workerProbeMs: number;
  logger: Logger;
  onWorkerDead(worker: WorkerRecord): void;
  /** A new worker (or one back from the dead) registered. */
  onWorkerJoined(worker: WorkerRecord): void;
  /** A worker asks to leave; returns why it cannot ('' when its work will be handed over). */
  onWorkerLeaving(worker: WorkerRecord): string;
  onHeartbeat(worker: WorkerRecord, heartbeat: Heartbeat): void;
  /**
   * Whether this coordinator answers registrations and leave requests: only the leader does; a
   * standby only watches heartbeats, so that it knows the workers the moment it takes over.
   * @default always
   */
  answers?(): boolean;
}

export class WorkerRegistry {
  readonly #o: WorkerRegistryOptions;
  readonly #workers = new Map<WorkerId, WorkerRecord>();
  readonly #subs: Subscription[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  /** Workers with a liveness probe in flight. */
  readonly #probing = new Set<WorkerId>();
  /** Ids with an admission probe in flight. */
  readonly #admitting = new Set<WorkerId>();

  constructor(options: WorkerRegistryOptions) {
    this.#o = options;
  }

  start(): void {
    const { nc } = this.#o;
    this.#subs.push(
      nc.subscribe(subjects.fromAnyWorker('register'), {
        callback: (_e, msg) => {
          if (this.#o.answers?.() === false) return;
          try {
            const r = codecs.register.decode(msg.data);
            const id = checkSender(msg.subject, r.workerId);
            const key = checkedKey(id, r.channelPublicKey);
            const reply = codecs.registerReply.encode({ heartbeatIntervalMs: this.#o.heartbeatIntervalMs });
            const w = this.#workers.get(id);
            if (w !== undefined && w.state === 'ALIVE') {
              // The same process again (its reply was lost, or a new leader): nothing changes.
              sameKey(w, key, 'registration');
              w.lastHeartbeatMs = Date.now();
              msg.respond(reply);
              return;
            }
            this.#admit(id, key, 'registration', () => {
              this.#join(id, r.pid, r.host, key).servingAddress = r.servingAddress ?? '';
              msg.respond(reply);
            });
          } catch (e) {
            logRejected(this.#o.logger, e, 'registration');
          }
        },
      }),
      nc.subscribe(subjects.fromAnyWorker('leave'), {
        callback: (_e, msg) => {
          if (this.#o.answers?.() === false) return;
          try {
            const w = this.#workers.get(checkSender(msg.subject, codecs.leave.decode(msg.data).workerId));
            if (!w || w.state === 'DEAD') {
              msg.respond(codecs.ack.encode({ ok: false, error: 'unknown worker' }));
              return;
            }
            w.leaving = true;
            this.#o.logger.info({ workerId: w.id }, 'worker leaving');
            const refused = this.#o.onWorkerLeaving(w);
            if (refused) w.leaving = false;
            msg.respond(codecs.ack.encode({ ok: refused === '', error: refused }));
          } catch (e) {
            logRejected(this.#o.logger, e, 'leave request');
          }
        },
      }),
      nc.subscribe(subjects.fromAnyWorker('deregister'), {
        callback: (_e, msg) => {
          try {
            const id = checkSender(msg.subject, codecs.leave.decode(msg.data).workerId);
            this.markDead(id, 'deregistered');
            this.#workers.delete(id);
          } catch (e) {
            logRejected(this.#o.logger, e, 'deregistration');
          }
        },
      }),
      nc.subscribe(subjects.fromAnyWorker('heartbeat'), {
        callback: (_e, msg) => {
          try {
            const hb = codecs.heartbeat.decode(msg.data);
            checkSender(msg.subject, hb.workerId);
            this.#onHeartbeat(hb);
          } catch (e) {
            logRejected(this.#o.logger, e, 'heartbeat');
          }
        },
      }),
    );
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(100, this.#o.heartbeatIntervalMs / 2));
  }

  /** A new record for an admitted id (unknown or dead until now). */
  #join(id: WorkerId, pid: number, host: string, key: Uint8Array | undefined): WorkerRecord {
    const now = Date.now();
    const w: WorkerRecord = { id, state: 'ALIVE', pid, host, registeredAtMs: now, lastHeartbeatMs: now, jobs: new Map(), runningJobs: new Set(), leaving: false, stateBytes: 0, servingAddress: '' };
    if (key !== undefined) w.channelPublicKey = key;
    this.#workers.set(id, w);
    this.#o.logger.info({ workerId: id, pid, host }, 'worker registered');
    // After the registration reply: the worker listens on its control subjects by then.
    queueMicrotask(() => this.#o.onWorkerJoined(w));
    return w;
  }

  /**
   * Runs `then` once the process listening on `id`'s control subjects answers a probe with `key`
   * (an answer without a key, from a worker that predates keys, is taken). Anything else refuses
   * the claim: nobody listens there, or another process does. One admission per id at a time;
   * the worker retries its registration, and heartbeats keep coming.
   */
  #admit(id: WorkerId, key: Uint8Array | undefined, what: string, then: () => void): void {
    if (this.#admitting.has(id)) return;
    this.#admitting.add(id);
    this.#o.nc
      .request(subjects.ping(id), new Uint8Array(0), { timeout: ADMISSION_PROBE_MS })
      .then(
        (answer) => {
          const current = this.#workers.get(id);
          if (current !== undefined && current.state === 'ALIVE') return; // admitted meanwhile
          if (answer.data.length > 0 && (key === undefined || !Buffer.from(answer.data).equals(Buffer.from(key)))) {
            throw new ForgedMessageError(`a ${what} of worker ${id} with a channel key that the process on its control subjects does not hold`);
          }
          then();
        },
        (e: unknown) => {
          throw /no responders/i.test(ensureError(e).message) ? new ForgedMessageError(`a ${what} of worker ${id}, but nobody listens on its control subjects`) : e;
        },
      )
      .catch((e: unknown) => logRejected(this.#o.logger, e, what))
      .finally(() => this.#admitting.delete(id));
  }

  #onHeartbeat(hb: Heartbeat): void {
    const id = parseWorkerId(hb.workerId);
    const key = checkedKey(id, hb.channelPublicKey);
    const w = this.#workers.get(id);
    // A heartbeat from a worker we do not know (this coordinator restarted) or had declared
    // dead (it was partitioned away, or restarted under the same id): alive again once admitted,
    // with no assignment until one is made.
    if (w === undefined || w.state === 'DEAD') {
      this.#admit(id, key, 'heartbeat', () => this.#applyHeartbeat(this.#join(id, w?.pid ?? 0, w?.host ?? '', key), hb));
      return;
    }
    sameKey(w, key, 'heartbeat');
    this.#applyHeartbeat(w, hb);
  }

  #applyHeartbeat(w: WorkerRecord, hb: Heartbeat): void {
    w.lastHeartbeatMs = Date.now();
    w.jobs = new Map(hb.jobs.map((j) => [j.jobId, j]));
    w.runningJobs = new Set(hb.runningJobs);
    w.stateBytes = hb.stateBytes;
    w.rssBytes = hb.rssBytes ?? 0;
    w.cpuCores = hb.cpuCores ?? 0;
    w.servingAddress = hb.servingAddress ?? '';
    this.#o.onHeartbeat(w, hb);
  }

  #sweep(): void {
    const now = Date.now();
    for (const w of this.#workers.values()) {
      if (w.state !== 'ALIVE') continue;
      const silentMs = now - w.lastHeartbeatMs;
      if (silentMs > this.#o.workerTimeoutMs) {
        w.state = 'DEAD';
        this.#o.logger.warn({ workerId: w.id, silentMs }, 'worker dead');
        this.#o.onWorkerDead(w);
      } else if (silentMs > this.#o.workerProbeMs) {
        this.#probe(w);
      }
    }
  }

  /**
   * A silent worker is either gone or busy (a loaded machine delays its event loop for seconds).
   * NATS tells the two apart: a request to a subject nobody subscribes to fails at once with "no
   * responders", and a dead process's subscriptions go with its connection. A busy worker answers
   * late or not within the probe's time-out; it stays alive until workerTimeoutMs.
   */
  #probe(w: WorkerRecord): void {
    if (this.#probing.has(w.id)) return;
    this.#probing.add(w.id);
    const timeout = Math.max(250, Math.min(1_000, this.#o.workerTimeoutMs - this.#o.workerProbeMs));
    this.#o.nc
      .request(subjects.ping(w.id), new Uint8Array(0), { timeout })
      .then(
        (answer) => {
          // Answered, but by a process with another key: the registered one is gone (a worker
          // restarted under the same id). Its new key is taken once this one is dead.
          if (answer.data.length > 0 && w.channelPublicKey !== undefined && !Buffer.from(answer.data).equals(Buffer.from(w.channelPublicKey)) && this.#workers.get(w.id) === w) {
            this.markDead(w.id, 'silent, and its control subject is answered by a process with another channel key: the registered process is gone');
          }
        },
        (e: unknown) => {
          if (/no responders/i.test(ensureError(e).message) && this.#workers.get(w.id) === w) this.markDead(w.id, 'silent, and no responders on its control subject: the process is gone');
        },
      )
      .finally(() => this.#probing.delete(w.id));
  }

  /** Declares a worker dead at once (its control subscription is gone: "no responders"). */
  markDead(id: WorkerId, reason: string): void {
    const w = this.#workers.get(id);
    if (!w || w.state === 'DEAD') return;
    w.state = 'DEAD';
    this.#o.logger.warn({ workerId: id, reason }, 'worker dead');
    this.#o.onWorkerDead(w);
  }

  /** Live workers, sorted by id so that every assignment is computed the same way. */
  alive(): WorkerRecord[] {
    return [...this.#workers.values()].filter((w) => w.state === 'ALIVE').sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Live workers that may take work (not leaving), sorted by id. */
  available(): WorkerRecord[] {
    return this.alive().filter((w) => !w.leaving);
  }

  all(): WorkerRecord[] {
    return [...this.#workers.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  get(id: WorkerId): WorkerRecord | undefined {
    return this.#workers.get(id);
  }

  stop(): void {
    clearInterval(this.#sweeper);
    for (const s of this.#subs) s.unsubscribe();
  }
}

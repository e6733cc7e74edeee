// Leader election among coordinators (docs/ARCHITECTURE.md, "Standby coordinators"). Any number
// of coordinators run; the one holding the `leader` key of the job store's KV bucket leads, the
// others stand by and watch it.
//
// The lease is a revision-checked value, renewed by its holder every leaseMs/3 with an update
// that names the revision it last wrote. nats-server 2.9 has no per-key TTL (and a bucket TTL
// would expire the jobs too), so the TTL is kept by the observers: a standby that sees the same
// revision for leaseMs, on its own monotonic clock, takes the key over with an update naming that
// revision (one standby wins; a leader that renewed meanwhile wins). The holder counts its lease
// from the moment it *sent* its last successful renewal, and a standby from the moment it *saw*
// that renewal, which is later: the holder always believes its lease over before any standby does.
// A holder whose lease ran out acts no more but keeps renewing for a grace (LAPSE_GRACE_LEASES):
// a renewal that gets through means nobody took over, and it leads on in the same term.
//
// Each takeover raises the term, the leader epoch: it travels with every command to workers,
// which refuse an older one (worker/worker.ts), and it never goes back (the key is never deleted;
// a leader that shuts down marks it released, so a standby takes over at once).
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { ensureError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

export const LEADER_KEY = 'leader';
/** A lease not renewed this long is over. @default */
export const DEFAULT_LEADER_LEASE_MS = 1500;
/**
 * A leader whose lease ran out keeps trying to renew it, from the revision it last wrote, for this
 * many lease lengths before it stands by. Meanwhile it holds() nothing (no command, no commit), so
 * it is as safe as a paused leader; a renewal that gets through proves nobody took the key over
 * (a takeover writes over that same revision), and it leads on in the same term without letting
 * its jobs go. Deposed at once, a lone coordinator whose renewals were slow for a moment (seen at
 * load 35-45 on 2 cores) redeployed every job: a recovery for nothing.
 */
export const LAPSE_GRACE_LEASES = 3;

/** What the `leader` key holds. */
export interface LeaseValue {
  coordinatorId: string;
  /** The holder's gRPC address: where standbys send clients. */
  address: string;
  /** The holder's dashboard (host:port), when it serves one: a standby's dashboard links to it. */
  httpAddress?: string;
  /** The leader epoch; raised by every takeover. */
  term: number;
  /** The lease length the holder renews within, in ms. */
  leaseMs: number;
  /** The holder let go (shutting down): a standby need not wait for the lease to run out. */
  released?: boolean;
}

export type LeaseRole = 'STANDBY' | 'LEADER' | 'CLOSED';

/** What the job manager asks of the lease (coordinator/job-manager.ts; commands in job-deployment.ts, commits in job-checkpoints.ts, fenced writes in job-persistence.ts). */
export interface Leadership {
  /** The leader epoch while leading, else 0. */
  readonly term: number;
  /** Leads, and the lease surely holds a while yet: checked before every command and commit. */
  holds(): boolean;
  /** The leader's gRPC address as far as known ('' when none is). */
  leaderAddress(): string;
  /** A write was fenced off (job-store.ts): another coordinator leads; stand by. */
  fenced(reason: string): void;
}

export interface LeaderLeaseOptions {
  kv: KV;
  coordinatorId: string;
  address: string;
  /** The dashboard's host:port ('' or absent: none). */
  httpAddress?: string;
  /** A lease not renewed this long is over; renewed every third of it. @default 1500 */
  leaseMs: number;
  logger: Logger;
  /** This coordinator now leads, in this term. Runs once per takeover; a rejection releases the lease. */
  onElected(term: number): Promise<void>;
  /** This coordinator no longer leads (its renewal failed or was overtaken); it stands by again. */
  onDeposed(reason: string): void;
}

export class LeaderLease {
  readonly #o: LeaderLeaseOptions;
  #role: LeaseRole = 'STANDBY';
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  /** As leader: the revision of our last write, and until when (monotonic ms) the lease holds. */
  #revision = 0;
  #validUntilMs = 0;
  #lastRenewSentMs = 0;
  #term = 0;
  /** As leader: the lease ran out and a late renewal is being tried (see LAPSE_GRACE_LEASES). */
  #lapsed = false;
  /** As standby: the revision last seen, when it was first seen, and what it said. */
  #seenRevision = 0;
  #seenAtMs = 0;
  #seen: LeaseValue | undefined;

  constructor(options: LeaderLeaseOptions) {
    this.#o = options;
  }

  get role(): LeaseRole {
    return this.#role;
  }

  /** The leader epoch while leading (0 otherwise). */
  get term(): number {
    return this.#role === 'LEADER' ? this.#term : 0;
  }

  /**
   * Leads and the lease surely still holds, with a margin for what is about to be done under it:
   * checked before every commit (a paused process that wakes up after its lease finds it false).
   */
  holds(marginMs = this.#o.leaseMs / 5): boolean {
    return this.#role === 'LEADER' && now() + marginMs < this.#validUntilMs;
  }

  /** The leader as last seen (standby) or this one (leader); undefined when none is known. */
  leader(): LeaseValue | undefined {
    if (this.#role === 'LEADER') return this.#value(this.#term);
    return this.#seen && !this.#seen.released ? this.#seen : undefined;
  }

  /** Makes a first attempt at once, then keeps watching or renewing. */
  async start(): Promise<void> {
    await this.#tick();
    this.#timer = setInterval(() => void this.#tick(), Math.max(20, Math.floor(this.#o.leaseMs / 6)));
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#role === 'CLOSED') return;
    this.#busy = true;
    try {
      if (this.#role === 'LEADER') await this.#renew();
      else await this.#watch();
    } catch (e) {
      this.#o.logger.warn({ err: ensureError(e).message, role: this.#role }, 'leader lease check failed');
    } finally {
      this.#busy = false;
    }
    if (this.#role !== 'LEADER' || now() < this.#validUntilMs) return;
    if (now() >= this.#validUntilMs + LAPSE_GRACE_LEASES * this.#o.leaseMs) this.#depose('the lease ran out: renewals did not get through');
    else if (!this.#lapsed) {
      this.#lapsed = true;
      this.#o.logger.warn({ term: this.#term, leaseMs: this.#o.leaseMs }, 'leader lease lapsed: nothing is done under it until a renewal gets through or another coordinator takes it');
    }
  }

  async #renew(): Promise<void> {
    if (now() - this.#lastRenewSentMs < this.#o.leaseMs / 3) return;
    const sentAt = now();
    try {
      const revision = await this.#o.kv.update(LEADER_KEY, JSON.stringify(this.#value(this.#term)), this.#revision);
      if (this.#role !== 'LEADER') return;
      if (this.#lapsed) this.#o.logger.warn({ term: this.#term, lapsedMs: Math.round(sentAt - this.#validUntilMs) }, 'leader lease renewed late: nobody took it over; leading on in the same term');
      this.#lapsed = false;
      this.#revision = revision;
      this.#lastRenewSentMs = sentAt;
      this.#validUntilMs = sentAt + this.#o.leaseMs;
    } catch (e) {
      if (!isCompareAndSetConflict(e)) throw e;
      // A renewal that timed out but was written moved the revision under us: still ours.
      const entry = await this.#o.kv.get(LEADER_KEY);
      const value = entry?.operation === 'PUT' ? parseLease(entry.string()) : undefined;
      if (entry && value?.coordinatorId === this.#o.coordinatorId && value.term === this.#term && !value.released) {
        this.#revision = entry.revision;
        return;
      }
      this.#depose('another coordinator took the lease');
    }
  }

  async #watch(): Promise<void> {
    const entry = await this.#o.kv.get(LEADER_KEY);
    const at = now();
    if (entry === null || entry.operation !== 'PUT') return this.#acquire(0, 0, entry?.revision ?? 0);
    const value = parseLease(entry.string());
    if (entry.revision !== this.#seenRevision) {
      this.#seenRevision = entry.revision;
      this.#seenAtMs = at;
      this.#seen = value;
      if (value && !value.released) return;
    }
    const leaseMs = value?.leaseMs ?? this.#o.leaseMs;
    if (value?.released || at - this.#seenAtMs >= leaseMs) await this.#acquire(value?.term ?? 0, leaseMs, entry.revision);
  }

  /** Takes the key over from `revision` (0: it does not exist) in the next term. */
  async #acquire(previousTerm: number, previousLeaseMs: number, revision: number): Promise<void> {
    const term = previousTerm + 1;
    const sentAt = now();
    try {
      const value = JSON.stringify(this.#value(term));
      this.#revision = revision === 0 ? await this.#o.kv.create(LEADER_KEY, value) : await this.#o.kv.update(LEADER_KEY, value, revision);
    } catch (e) {
      if (isCompareAndSetConflict(e)) return; // another standby won, or the leader renewed
      throw e;
    }
    if (this.#role === 'CLOSED') return;
    this.#role = 'LEADER';
    this.#term = term;
    this.#lastRenewSentMs = sentAt;
    this.#validUntilMs = sentAt + this.#o.leaseMs;
    this.#o.logger.info({ term, previous: this.#seen?.coordinatorId, previousLeaseMs, silentMs: this.#seenAtMs === 0 ? 0 : Math.round(sentAt - this.#seenAtMs) }, 'leader lease acquired');
    // Not awaited here: renewals go on while the jobs are taken over.
    void this.#o.onElected(term).catch(async (e: unknown) => {
      if (this.#role !== 'LEADER' || this.#term !== term) return;
      this.#o.logger.error({ err: ensureError(e), term }, 'taking over as leader failed; letting the lease go');
      this.#depose(`taking over failed: ${ensureError(e).message}`);
      await this.#release(term);
    });
  }

  /** A write under the lease was fenced off: another coordinator leads, whatever the clock says. */
  stepDown(reason: string): void {
    this.#depose(reason);
  }

  #depose(reason: string): void {
    if (this.#role !== 'LEADER') return;
    this.#role = 'STANDBY';
    this.#lapsed = false;
    // Watched afresh: a full lease must pass before this one may take over again.
    this.#seenRevision = 0;
    this.#o.logger.warn({ term: this.#term, reason }, 'leader lease lost; standing by');
    this.#o.onDeposed(reason);
  }

  /** Marks the lease released (a standby takes over at once), when it is still ours. */
  async #release(term = this.#term): Promise<void> {
    try {
      await this.#o.kv.update(LEADER_KEY, JSON.stringify({ ...this.#value(term), released: true }), this.#revision);
    } catch (e) {
      this.#o.logger.warn({ err: ensureError(e).message }, 'leader lease not released');
    }
  }

  /** Stops watching; a leader lets the lease go first (and is no longer leader after). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    const leading = this.#role === 'LEADER';
    this.#role = 'CLOSED';
    if (leading) await this.#release();
  }

  #value(term: number): LeaseValue {
    return { coordinatorId: this.#o.coordinatorId, address: this.#o.address, ...(this.#o.httpAddress && { httpAddress: this.#o.httpAddress }), term, leaseMs: this.#o.leaseMs };
  }
}

/** Monotonic milliseconds: wall-clock steps must not stretch or shorten a lease. */
function now(): number {
  return performance.now();
}

function parseLease(text: string): LeaseValue | undefined {
  try {
    const v = JSON.parse(text) as Partial<LeaseValue>;
    return typeof v.coordinatorId === 'string' && typeof v.term === 'number' && typeof v.leaseMs === 'number' ? (v as LeaseValue) : undefined;
  } catch {
    return undefined;
  }
}

function isCompareAndSetConflict(e: unknown): boolean {
  return e instanceof JetStreamApiError && (e.code === JetStreamApiCodes.StreamWrongLastSequence || e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

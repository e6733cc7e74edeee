// The sending side of channels: one sender task to every key group of the next stage
// (docs/ARCHITECTURE.md, "Actors, tasks and channels").
//
// Core NATS drops messages of a subscriber it cut off for stalling, without telling anybody.
// So every channel (sender task × key group) numbers its batches, keeps a bounded window of
// unacknowledged ones, and treats an acknowledgement time-out as a broken channel: a record is
// never lost silently. Acknowledgements are cumulative (the receiver processes a key group's
// batches in order), so one ack frees every batch up to its sequence.
//
// A receiver acknowledges a batch once it has processed it, and a channel held behind a barrier
// (alignment) or a loaded machine can keep it waiting long. Slow is not lost: a batch
// unacknowledged for a third of the time-out is sent again, and a receiver that already has it
// acknowledges at once everything it has received (worker/task/keyed-task.ts, "a resend"). Only
// a receiver that is gone or whose event loop is stuck lets the time-out run out; one that lost
// the batch takes the resend as new.
//
// On a signed channel an acknowledgement that does not verify is dropped and counted, never
// taken (channel-acks.ts).
//
// Watermarks: every source split sends its watermark to every key group of the next stage each
// watermark interval, so most channels carried more watermark messages than data batches (Nexmark
// q4: 118,016 watermark messages beside 32,020 data batches). A watermark is therefore owed to a
// channel rather than sent: it rides on the channel's next data batch (core/record-batch.ts), or
// replaces one still queued, and goes alone only when no batch took it within watermarkLingerMs.
// A watermark that arrives later than it could is always safe (it is what a slower watermark
// generator would send); one that overtakes records sent before it never happens, because it
// only ever travels on or after them. Idleness and the end of input go at once, as before.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { BatchKind, encodeBatch, type Record } from '../../core/record-batch.ts';
import { subjects } from '../../core/subjects.ts';
import { ChannelBrokenError } from '../../core/errors.ts';
import type { JobId, StageId } from '../../core/ids.ts';
import type { ThrottledLog } from '../../core/throttled-log.ts';
import { TAG_BYTES, type BatchSigner } from './batch-signing.ts';
import { publishBatcher, type PublishBatcher } from './publish-batcher.ts';
import { decodeAck } from './channel-acks.ts';

export interface ChannelSenderOptions {
  nc: NatsConnection;
  jobId: JobId;
  /** The stage the records go to. */
  toStage: StageId;
  /** Unique name of the sending task (a channel is sender × key group). */
  senderTask: string;
  maxParallelism: number;
  maxBatchRecords: number;
  batchLingerMs: number;
  /** How long a watermark may wait for a data batch to ride on before it goes alone. @default 0: always alone, at once */
  watermarkLingerMs?: number;
  channelWindow: number;
  ackTimeoutMs: number;
  /** Called once when a channel breaks: the job must recover, never carry on. */
  onBroken(error: ChannelBrokenError): void;
  /** Called once per data batch sent, with its record count (metrics; worker/worker-metrics.ts). */
  recordBatchSize?(records: number): void;
  /** Signs every batch with the job's channel key of the epoch (batch-signing.ts). @default unsigned */
  signer?: BatchSigner;
  /** Where acknowledgements that do not verify are counted and logged (throttled). @default counted only (forgedAcks) */
  rejections?: ThrottledLog;
}

/** A closed batch waiting for window room: records, a barrier (checkpointId) or a watermark. */
interface Outgoing {
  records: Record[] | null;
  checkpointId: number;
  watermark?: { watermark: number; idle: boolean };
}

interface Channel {
  /** The open batch. */
  pending: Record[];
  /** Closed batches (and barriers) in channel order, sent as the window allows. */
  outbox: Outgoing[];
  /** Last sequence sent and last acknowledged. */
  sent: number;
  acked: number;
  /** Send times of unacknowledged batches, oldest first. */
  sentAt: number[];
  /** The bytes of unacknowledged batches, oldest first (for a resend). */
  unacked: Uint8Array[];
  /** When the oldest unacknowledged batch was last sent again (0: never). */
  resentAt: number;
  /** A watermark not yet on its way: it rides on the next closed data batch (NaN: none). */
  owed: number;
}

/** Watermarks at or past this go at once: the end of input (worker/task/generator-task.ts) must not wait. */
const FINAL_WATERMARK = Number.MAX_SAFE_INTEGER;

export class ChannelSender {
  readonly #o: ChannelSenderOptions;
  readonly #channels: Channel[];
  readonly #ackSubject: string;
  readonly #ackSub: Subscription;
  readonly #out: PublishBatcher;
  readonly #watchdog: NodeJS.Timeout;
  #linger: NodeJS.Timeout | undefined;
  /** Key groups owed a watermark, and when those go alone at the latest. */
  readonly #owing = new Set<number>();
  #watermarkLinger: NodeJS.Timeout | undefined;
  #pendingTotal = 0;
  /** Records in open batches (part of #pendingTotal): at #flushAt every open batch closes. */
  #openRecords = 0;
  readonly #flushAt: number;
  #waiters: Array<() => void> = [];
  #broken: ChannelBrokenError | undefined;
  #closed = false;
  /** Records handed to send(); for metrics. */
  recordsSent = 0;
  /** Milliseconds spent with a full window (backpressure). */
  blockedMs = 0;
  /** Batches sent again after a third of the acknowledgement time-out without an answer. */
  resentBatches = 0;
  /** Acknowledgements dropped because their tag did not verify (signed channels). */
  forgedAcks = 0;
  /** Watermarks sent as messages of their own, and those that rode on a data batch instead. */
  watermarkMessages = 0;
  ridingWatermarks = 0;
  #blockedSince = 0;

  constructor(options: ChannelSenderOptions) {
    this.#o = options;
    this.#flushAt = options.maxBatchRecords * 8;
    this.#channels = Array.from({ length: options.maxParallelism }, () => ({ pending: [], outbox: [], sent: 0, acked: 0, sentAt: [], unacked: [], resentAt: 0, owed: Number.NaN }));
    this.#ackSubject = subjects.channelAck(options.jobId, options.senderTask);
    this.#out = publishBatcher(options.nc);
    this.#ackSub = options.nc.subscribe(this.#ackSubject, {
      callback: (err, msg) => {
        if (err) return this.#break(`ack subscription failed: ${err.message}`);
        // The server answers a batch nobody subscribed to with a 503 status on its reply
        // subject: the key group has no owner (its worker is gone).
        if (msg.headers?.code === 503) return this.#break(`a batch to ${msg.headers.description || 'a key group'} found no subscriber: the key group's owner is gone`);
        this.#onAck(msg.data);
      },
    });
    this.#watchdog = setInterval(() => this.#checkAckTimeouts(), Math.min(1000, options.ackTimeoutMs / 2));
    this.#watchdog.unref();
  }

  /** Queues one record for its key group; sends when the batch is full or lingered. */
  send(keyGroup: number, record: Record): void {
    if (this.#broken) throw this.#broken;
    const ch = this.#channels[keyGroup]!;
    ch.pending.push(record);
    this.#pendingTotal++;
    this.#openRecords++;
    this.recordsSent++;
    if (ch.pending.length >= this.#o.maxBatchRecords) {
      this.#close(keyGroup, ch);
      this.#drain(keyGroup, ch);
    } else if (this.#openRecords >= this.#flushAt) this.flush();
    else if (this.#linger === undefined) this.#linger = setTimeout(() => this.flush(), this.#o.batchLingerMs);
  }

  /**
   * Sends barrier N on every channel, after every record sent before it: the in-band marker
   * that cuts the stream for checkpoint N (docs/ARCHITECTURE.md, "Checkpoints").
   */
  sendBarrier(checkpointId: number): void {
    if (this.#broken) throw this.#broken;
    for (let kg = 0; kg < this.#channels.length; kg++) {
      const ch = this.#channels[kg]!;
      this.#close(kg, ch);
      ch.outbox.push({ records: null, checkpointId });
      this.#drain(kg, ch);
    }
  }

  /**
   * Sends a watermark (or idleness) on every channel, after every record sent before it: in-band,
   * like barriers (docs/ARCHITECTURE.md, "Event time"). A plain watermark is owed to each channel
   * and rides on its next data batch, or goes alone within watermarkLingerMs ("Watermarks" above).
   */
  sendWatermark(watermark: number, idle: boolean): void {
    if (this.#broken) throw this.#broken;
    const now = idle || watermark >= FINAL_WATERMARK || (this.#o.watermarkLingerMs ?? 0) <= 0;
    for (let kg = 0; kg < this.#channels.length; kg++) {
      const ch = this.#channels[kg]!;
      if (now) {
        // The owed watermark rides on the open batch, if any; this one follows alone (and never
        // below what was owed: a channel's watermark does not go back).
        const owed = ch.owed;
        this.#close(kg, ch);
        this.#owe(kg, ch, Number.NaN);
        this.#pushWatermark(ch, Number.isNaN(owed) ? watermark : Math.max(owed, watermark), idle);
        this.#drain(kg, ch);
        continue;
      }
      this.#owe(kg, ch, watermark);
      // Records are waiting: close them now with the watermark, as a watermark message did.
      if (ch.pending.length > 0) {
        this.#close(kg, ch);
        this.#drain(kg, ch);
        continue;
      }
      // A closed batch still waits for window room: it takes the watermark instead.
      const last = ch.outbox[ch.outbox.length - 1];
      if (last !== undefined && (last.records !== null || last.watermark?.idle === false)) {
        this.#owe(kg, ch, Number.NaN);
        if (last.watermark === undefined && last.records !== null) this.ridingWatermarks++;
        last.watermark = { watermark, idle: false };
      }
    }
    if (this.#owing.size > 0 && this.#watermarkLinger === undefined) {
      this.#watermarkLinger = setTimeout(() => this.#sendOwedWatermarks(), this.#o.watermarkLingerMs);
    }
  }

  /** Sets or clears (NaN) the watermark owed to a channel. */
  #owe(kg: number, ch: Channel, watermark: number): void {
    ch.owed = watermark;
    if (Number.isNaN(watermark)) this.#owing.delete(kg);
    else this.#owing.add(kg);
  }

  #pushWatermark(ch: Channel, watermark: number, idle: boolean): void {
    ch.outbox.push({ records: null, checkpointId: 0, watermark: { watermark, idle } });
    this.watermarkMessages++;
  }

  /** The linger ran out: every watermark still owed goes alone. */
  #sendOwedWatermarks(): void {
    this.#watermarkLinger = undefined;
    if (this.#broken || this.#closed) return;
    for (const kg of this.#owing) {
      const ch = this.#channels[kg]!;
      this.#pushWatermark(ch, ch.owed, false);
      ch.owed = Number.NaN;
      this.#drain(kg, ch);
    }
    this.#owing.clear();
  }

  /** True while records wait behind full windows: the caller should await whenWritable(). */
  get blocked(): boolean {
    return this.#pendingTotal - this.#openRecords >= this.#o.maxBatchRecords * 4;
  }

  whenWritable(): Promise<void> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (!this.blocked) return Promise.resolve();
    if (this.#blockedSince === 0) this.#blockedSince = performance.now();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Sends every non-empty batch whose window has room. */
  flush(): void {
    if (this.#linger !== undefined) {
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    if (this.#broken || this.#closed) return;
    for (let kg = 0; kg < this.#channels.length; kg++) {
      const ch = this.#channels[kg]!;
      this.#close(kg, ch);
      this.#drain(kg, ch);
    }
    if (this.#pendingTotal > 0 && this.#linger === undefined) this.#linger = setTimeout(() => this.flush(), this.#o.batchLingerMs);
  }

  /**
   * Resolves once everything sent or queued so far is acknowledged: a sender that hands its
   * split over at a barrier closes only then, so no batch waits in an outbox that is gone.
   */
  whenDrained(): Promise<void> {
    this.flush();
    if (this.#watermarkLinger !== undefined) {
      clearTimeout(this.#watermarkLinger);
      this.#sendOwedWatermarks();
    }
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#isDrained()) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  #isDrained(): boolean {
    if (this.#pendingTotal > 0) return false;
    for (const ch of this.#channels) if (ch.outbox.length > 0 || ch.sent !== ch.acked) return false;
    return true;
  }

  readonly #drainWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  /** Records queued or sent but not yet acknowledged. */
  get unacknowledgedBatches(): number {
    let n = 0;
    for (const ch of this.#channels) n += ch.sent - ch.acked;
    return n;
  }

  /** Milliseconds spent with a full window so far, including a wait still going on. */
  get backpressureMs(): number {
    return this.blockedMs + (this.#blockedSince !== 0 ? performance.now() - this.#blockedSince : 0);
  }

  get pendingRecords(): number {
    return this.#pendingTotal;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watchdog);
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    if (this.#watermarkLinger !== undefined) clearTimeout(this.#watermarkLinger);
    this.#ackSub.unsubscribe();
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Closes the open batch into the outbox, with the watermark owed to the channel if any. */
  #close(kg: number, ch: Channel): void {
    if (ch.pending.length === 0) return;
    this.#openRecords -= ch.pending.length;
    const out: Outgoing = { records: ch.pending, checkpointId: 0 };
    if (!Number.isNaN(ch.owed)) {
      out.watermark = { watermark: ch.owed, idle: false };
      this.ridingWatermarks++;
      this.#owe(kg, ch, Number.NaN);
    }
    ch.outbox.push(out);
    ch.pending = [];
  }

  /** Sends from the outbox while the window has room; the rest waits for acknowledgements. */
  #drain(keyGroup: number, ch: Channel): void {
    while (ch.outbox.length > 0 && ch.sent - ch.acked < this.#o.channelWindow) {
      const out = ch.outbox.shift()!;
      const sequence = ++ch.sent;
      ch.sentAt.push(Date.now());
      const base = { sequence, keyGroup, sender: this.#o.senderTask };
      const signer = this.#o.signer;
      const trailer = signer === undefined ? 0 : TAG_BYTES;
      let bytes: Uint8Array;
      if (out.records) {
        this.#pendingTotal -= out.records.length;
        this.#o.recordBatchSize?.(out.records.length);
        bytes = encodeBatch({ kind: BatchKind.DATA, ...base, records: out.records, ...out.watermark }, trailer);
      } else if (out.watermark) {
        bytes = encodeBatch({ kind: BatchKind.WATERMARK, ...base, records: [], ...out.watermark }, trailer);
      } else {
        bytes = encodeBatch({ kind: BatchKind.BARRIER, ...base, records: [], checkpointId: out.checkpointId }, trailer);
      }
      signer?.sign(bytes);
      ch.unacked.push(bytes);
      this.#out.publish(subjects.channel(this.#o.jobId, this.#o.toStage, keyGroup), bytes, this.#ackSubject);
    }
  }

  #onAck(data: Uint8Array): void {
    const signer = this.#o.signer;
    const ack = decodeAck(data, this.#o.senderTask, signer);
    if (ack.rejected !== undefined) {
      if (signer === undefined) return this.#break(`${ack.rejected} on ${this.#ackSubject}`);
      // Not the receiver's: dropped before it frees anything, and never a reason to break.
      this.forgedAcks++;
      this.#o.rejections?.warn('channel-ack', { subject: this.#ackSubject, detail: ack.rejected }, 'forged channel acknowledgement rejected');
      return;
    }
    // One message covers several key groups (channel-acks.ts); each entry is cumulative for its
    // channel, as a message of its own would be.
    for (const { keyGroup: kg, sequence: seq } of ack.entries) {
      const ch = this.#channels[kg];
      if (!ch || seq > ch.sent) return this.#break(`acknowledgement of batch ${seq} for key group ${kg}, which was never sent`);
      if (seq <= ch.acked) continue; // a repeated ack
      ch.sentAt.splice(0, seq - ch.acked);
      ch.unacked.splice(0, seq - ch.acked);
      ch.resentAt = 0;
      ch.acked = seq;
      this.#drain(kg, ch);
    }
    if (!this.blocked && this.#waiters.length > 0) {
      if (this.#blockedSince !== 0) {
        this.blockedMs += performance.now() - this.#blockedSince;
        this.#blockedSince = 0;
      }
      for (const w of this.#waiters.splice(0)) w();
    }
    if (this.#drainWaiters.length > 0 && this.#isDrained()) for (const w of this.#drainWaiters.splice(0)) w.resolve();
  }

  #checkAckTimeouts(): void {
    const now = Date.now();
    const resendAfterMs = this.#o.ackTimeoutMs / 3;
    for (let kg = 0; kg < this.#channels.length; kg++) {
      const ch = this.#channels[kg]!;
      const oldest = ch.sentAt[0];
      if (oldest === undefined) continue;
      if (now - oldest > this.#o.ackTimeoutMs) {
        return this.#break(`batch ${ch.acked + 1} to ${this.#o.toStage} key group ${kg} unacknowledged after ${this.#o.ackTimeoutMs} ms, sent again without an answer: the receiver is gone or stuck, or the batch was lost`);
      }
      if (now - oldest > resendAfterMs && now - ch.resentAt > resendAfterMs) {
        ch.resentAt = now;
        this.resentBatches++;
        this.#out.publish(subjects.channel(this.#o.jobId, this.#o.toStage, kg), ch.unacked[0]!, this.#ackSubject);
      }
    }
  }

  #break(message: string): void {
    if (this.#broken) return;
    this.#broken = new ChannelBrokenError(`channel ${this.#o.senderTask} → ${this.#o.toStage}: ${message}`);
    clearInterval(this.#watchdog);
    for (const w of this.#waiters.splice(0)) w();
    for (const w of this.#drainWaiters.splice(0)) w.reject(this.#broken);
    this.#o.onBroken(this.#broken);
  }
}

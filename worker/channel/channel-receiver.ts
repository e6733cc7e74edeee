// The receiving half of channels: every channel into the key groups of one keyed stage on this
// worker (docs/ARCHITECTURE.md, "Actors, tasks and channels"). The sending half is
// channel-sender.ts; the acknowledgement both speak is channel-acks.ts.
//
// It subscribes to eddy.<job>.<stage>.<kg> for each key group it is given (a key group moves by
// moving a subscription), fences off senders of another epoch, verifies signatures, and checks
// every channel's sequence: a resend is acknowledged again and dropped, a gap breaks the channel
// (core NATS dropped something). A batch in sequence is handed to the task, which acknowledges it
// once processed: the acknowledgement is the channel's flow control.
//
// During a move (docs/ARCHITECTURE.md, "Moves") batches of the senders before and after the move
// are taken, and an incoming key group's channel from a sender that predates the move starts
// after that channel's barrier of the move's checkpoint: what comes before it is the old owner's.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../../core/logger.ts';
import { subjects } from '../../core/subjects.ts';
import { ChannelBrokenError, ensureError } from '../../core/errors.ts';
import { decodeBarrier, decodeHeader, BatchKind, type BatchHeader } from '../../core/record-batch.ts';
import type { JobId, StageId } from '../../core/ids.ts';
import type { ThrottledLog } from '../../core/throttled-log.ts';
import type { BatchSigner } from './batch-signing.ts';
import { encodeAcks, MAX_ACK_ENTRIES, type AckEntry } from './channel-acks.ts';
import { publishBatcher, type PublishBatcher } from './publish-batcher.ts';

/** A batch taken on a channel, in sequence. */
export interface ReceivedBatch {
  header: BatchHeader;
  /** The batch's bytes, its signature verified and removed. */
  data: Uint8Array;
  /** Where its acknowledgement goes. */
  reply: string | undefined;
  /** "<sender>|<keyGroup>". */
  channel: string;
}

export interface ChannelReceiverOptions {
  nc: NatsConnection;
  jobId: JobId;
  stageId: StageId;
  /** The sending tasks of this epoch, of every input. A batch from any other sender is stale and fenced off. */
  senders: readonly string[];
  /** Verifies every batch's signature (batch-signing.ts). @default batches are not signed */
  signer?: BatchSigner;
  /** Where forged batches are counted and logged (throttled). @default logger, unthrottled */
  rejections?: ThrottledLog;
  logger: Logger;
  /** A batch in sequence, to queue for its key group. */
  deliver(batch: ReceivedBatch): void;
  /** The channel broke (a gap, an undecodable batch) or a subscription failed. */
  fail(error: Error, keyGroup: number): void;
  /** True once the task failed or stopped: nothing is taken any more. */
  closed(): boolean;
}

export class ChannelReceiver {
  readonly #o: ChannelReceiverOptions;
  readonly #subs = new Map<number, Subscription>();
  #senders: ReadonlySet<string>;
  /** Senders whose batches are taken: the current ones, and during a move also those before and after it. */
  #accepting: ReadonlySet<string>;
  /**
   * Incoming key group → the checkpoint at whose barrier its channels start, for the senders
   * that existed before the move (a sender added by the move starts at its first batch).
   */
  readonly #incomingAt = new Map<number, { checkpointId: number; senders: ReadonlySet<string> }>();
  /** Last accepted sequence per channel, keyed "<sender>|<keyGroup>". */
  readonly #lastSequence = new Map<string, number>();
  readonly #acks: PublishBatcher;
  /**
   * Acknowledgements of this turn not yet published: reply (the sender's ack subject) → the
   * sender and, per key group, the highest sequence to acknowledge. One message per sender a turn.
   */
  #pendingAcks = new Map<string, { sender: string; sequences: Map<number, number> }>();

  constructor(options: ChannelReceiverOptions) {
    this.#o = options;
    this.#acks = publishBatcher(options.nc);
    this.#senders = new Set(options.senders);
    this.#accepting = this.#senders;
  }

  /** The current senders: each delivers every barrier into every key group. */
  get senders(): ReadonlySet<string> {
    return this.#senders;
  }

  subscribe(keyGroup: number): void {
    if (this.#subs.has(keyGroup)) return;
    const subject = subjects.channel(this.#o.jobId, this.#o.stageId, keyGroup);
    this.#subs.set(keyGroup, this.#o.nc.subscribe(subject, { callback: (err, msg) => (err ? this.#o.fail(err, keyGroup) : this.#onMessage(msg)) }));
  }

  /**
   * Acknowledges every batch of `sender`'s channel to `keyGroup` up to `sequence`. Gathered over
   * the loop turn and published with the connection's channel traffic (publish-batcher.ts): one
   * signed message per sender covering every key group acknowledged in the turn (channel-acks.ts).
   * Acknowledgements are cumulative, so the highest sequence of a channel stands for the others.
   */
  ack(reply: string, sender: string, keyGroup: number, sequence: number): void {
    let pending = this.#pendingAcks.get(reply);
    if (pending === undefined) {
      if (this.#pendingAcks.size === 0) this.#acks.beforeFlush(this.#publishAcks);
      this.#pendingAcks.set(reply, (pending = { sender, sequences: new Map() }));
    }
    const before = pending.sequences.get(keyGroup);
    if (before === undefined || sequence > before) pending.sequences.set(keyGroup, sequence);
  }

  readonly #publishAcks = (): void => {
    const all = this.#pendingAcks;
    this.#pendingAcks = new Map();
    for (const [reply, { sender, sequences }] of all) {
      let entries: AckEntry[] = [];
      for (const [keyGroup, sequence] of sequences) {
        entries.push({ keyGroup, sequence });
        if (entries.length === MAX_ACK_ENTRIES) {
          this.#publishAck(reply, entries, sender);
          entries = [];
        }
      }
      if (entries.length > 0) this.#publishAck(reply, entries, sender);
    }
  };

  #publishAck(reply: string, entries: readonly AckEntry[], sender: string): void {
    try {
      this.#acks.publish(reply, encodeAcks(entries, sender, this.#o.signer));
    } catch (e) {
      // The connection closed or began draining since the batches were taken: the process is
      // stopping, and the sender's time-out notices what was not acknowledged.
      this.#acks.lostOnClose++;
      this.#o.logger.debug({ reply, error: ensureError(e).message }, 'channel acknowledgement not published');
    }
  }

  /**
   * A move at checkpoint N: the senders before and after it are taken until it applies, and the
   * incoming key groups are subscribed now (before barrier N can exist), each channel from a
   * sender in `sendersBefore` starting after its barrier N. Resolves once the server has the
   * subscriptions.
   */
  async prepareMove(checkpointId: number, incoming: readonly number[], senders: readonly string[], sendersBefore: readonly string[]): Promise<void> {
    const before = new Set(sendersBefore);
    this.#accepting = new Set([...this.#senders, ...sendersBefore, ...senders]);
    for (const kg of incoming) {
      this.#incomingAt.set(kg, { checkpointId, senders: before });
      this.#forgetSequences(kg);
      this.subscribe(kg);
    }
    await this.#o.nc.flush();
  }

  /** The move applied: the outgoing key groups are let go, and only the new senders are taken. */
  applyMove(outgoing: readonly number[], senders: readonly string[]): void {
    for (const kg of outgoing) {
      this.#subs.get(kg)?.unsubscribe();
      this.#subs.delete(kg);
      this.#forgetSequences(kg);
    }
    this.#senders = new Set(senders);
    this.#accepting = this.#senders;
  }

  /** Unsubscribes every channel. */
  close(): void {
    for (const s of this.#subs.values()) s.unsubscribe();
    this.#subs.clear();
  }

  #forgetSequences(keyGroup: number): void {
    for (const key of [...this.#lastSequence.keys()]) if (key.endsWith(`|${keyGroup}`)) this.#lastSequence.delete(key);
  }

  #onMessage(msg: Msg): void {
    if (this.#o.closed()) return;
    let header: BatchHeader;
    const signer = this.#o.signer;
    try {
      header = decodeHeader(msg.data);
    } catch (e) {
      // With signed batches a message that is not even a batch is somebody else's: not ours to fail on.
      if (signer !== undefined) return this.#reject(msg.subject, 'undecodable', ensureError(e).message);
      return this.#o.fail(new ChannelBrokenError(`undecodable batch on ${msg.subject}: ${ensureError(e).message}`), -1);
    }
    // Fencing: a sender of an earlier epoch (before a recovery or a move) is not applied.
    if (!this.#accepting.has(header.sender)) return;
    let data = msg.data;
    if (signer !== undefined) {
      // Before its sequence counts: a forged batch must neither be applied nor break the channel.
      const verified = signer.verify(data);
      if (verified === undefined) return this.#reject(msg.subject, 'bad-signature', `batch ${header.sequence} claims sender ${header.sender}`);
      data = verified;
    }
    const channel = `${header.sender}|${header.keyGroup}`;
    const incoming = this.#incomingAt.get(header.keyGroup);
    if (incoming !== undefined && !this.#lastSequence.has(channel) && incoming.senders.has(header.sender)) {
      // An incoming key group's channel from a sender that predates the move: what comes before
      // barrier N is the old owner's; the channel starts for this task after it.
      if (header.kind === BatchKind.BARRIER && decodeBarrier(data, header) === incoming.checkpointId) this.#lastSequence.set(channel, header.sequence);
      return;
    }
    const last = this.#lastSequence.get(channel) ?? 0;
    if (header.sequence <= last) {
      // A batch seen before (a resend): acknowledge again, apply nothing.
      if (msg.reply) this.ack(msg.reply, header.sender, header.keyGroup, last);
      return;
    }
    if (header.sequence !== last + 1) {
      // Core NATS dropped something (a slow-consumer cut-off, a reconnect): fail loudly.
      return this.#o.fail(new ChannelBrokenError(`channel ${header.sender} → ${this.#o.stageId} key group ${header.keyGroup}: batch ${header.sequence} arrived after ${last}; ${header.sequence - last - 1} batch(es) lost`), header.keyGroup);
    }
    this.#lastSequence.set(channel, header.sequence);
    this.#o.deliver({ header, data, reply: msg.reply, channel });
  }

  /** A message on a channel subject that is no batch of this job's senders: counted, logged throttled, dropped. */
  #reject(subject: string, why: 'undecodable' | 'bad-signature', detail: string): void {
    const fields = { subject, why, detail: detail.slice(0, 200) };
    if (this.#o.rejections !== undefined) this.#o.rejections.warn('record-batch', fields, 'forged record batch rejected');
    else this.#o.logger.warn(fields, 'forged record batch rejected');
  }
}

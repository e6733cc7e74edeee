// A producer for services that feed a job's source stream: records packed into frames (many
// records per JetStream message: core/record-frame.ts), each on the subject partition of its key
// as the job reads it (core/key-groups.ts partitionForKey), with a bounded window of unacknowledged
// publishes. Not part of '@eddy/sdk' (job code, which has no runtime dependencies): import it from
// this file.
//
//   await using producer = new FramedProducer(nc, { stream: 'indicators', partitions: 4, key: (r) => r.entityId });
//   for (const r of records) await producer.publish(r);
//   await producer.flush();            // every record acknowledged by the stream
//
// A frame is one unit for the stream: published, acknowledged (and replayed) whole. Records of one
// key keep their order (one partition, frames in publish order).
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { FRAME_FORMAT_NDJSON, FRAME_HEADER, FrameBuilder, type FrameLimits } from '../core/record-frame.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { subjects } from '../core/subjects.ts';

export interface FramedProducerOptions<T> extends FrameLimits {
  /** The job's source stream; records go to `<stream>.<partition>`. */
  stream: string;
  /** The stream's partitions (its source's `partitions`). */
  partitions: number;
  /** The record's key, as the job's source partitions it; absent: round-robin. @default none */
  key?: (record: T) => string;
  /** Frames awaiting the stream's acknowledgement at most. @default 64 */
  window?: number;
  /**
   * Longest a record waits in a partial frame before it is published anyway, in ms; 0 publishes
   * partial frames only at flush(). @default 50
   */
  lingerMs?: number;
}

export class FramedProducer<T = unknown> implements AsyncDisposable {
  readonly #o: FramedProducerOptions<T>;
  readonly #frames: FrameBuilder;
  readonly #publisher: BulkPublisher;
  readonly #headers: MsgHdrs;
  #next = 0;
  #linger: NodeJS.Timeout | undefined;
  /** Records handed to publish(), and those whose frame the stream acknowledged. */
  #records = 0;

  constructor(nc: NatsConnection, options: FramedProducerOptions<T>) {
    if (!Number.isSafeInteger(options.partitions) || options.partitions < 1) throw new RangeError(`partitions ${options.partitions}: expected a positive integer`);
    this.#o = options;
    this.#frames = new FrameBuilder(options);
    this.#publisher = new BulkPublisher(nc, { window: options.window ?? 64 });
    this.#headers = natsHeaders();
    this.#headers.set(FRAME_HEADER, FRAME_FORMAT_NDJSON);
  }

  /** Records handed to publish() so far. */
  get records(): number {
    return this.#records;
  }

  /** Adds a record; resolves at once unless a full frame must wait for window room. */
  async publish(record: T): Promise<void> {
    const { key, partitions, stream } = this.#o;
    const partition = key !== undefined ? partitionForKey(key(record), partitions) : this.#next++ % partitions;
    const subject = subjects.sourcePartition(stream, partition);
    const full = this.#frames.add(subject, JSON.stringify(record));
    this.#records++;
    if (full !== undefined) await this.#publisher.publish(subject, full, this.#headers);
    else this.#armLinger();
  }

  /** Publishes every partial frame and resolves once the stream acknowledged every frame. */
  async flush(): Promise<void> {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    for (const [subject, payload] of this.#frames.drain()) await this.#publisher.publish(subject, payload, this.#headers);
    await this.#publisher.flush();
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.#publisher.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #armLinger(): void {
    const lingerMs = this.#o.lingerMs ?? 50;
    if (lingerMs <= 0 || this.#linger !== undefined) return;
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      // Partial frames go out without waiting for window room; a failure shows at flush().
      for (const [subject, payload] of this.#frames.drain()) {
        try {
          this.#publisher.publishNow(subject, payload, this.#headers);
        } catch {
          // The publisher keeps its first failure; flush() throws it.
        }
      }
    }, lingerMs);
  }
}

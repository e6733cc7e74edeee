// The Nexmark events of sdk/nexmark.ts into a JetStream stream, so that the Nexmark jobs can read
// the same events from a real stream: event n goes to subject `<stream>.<n mod partitions>`, which
// is the split that would make it as a generator, so each split reads its events in time order.
import { headers } from '@nats-io/transport-node';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { FRAME_FORMAT_NDJSON, FRAME_HEADER, FrameBuilder } from '../core/record-frame.ts';
import { ensureSourceStream, type NatsConnection } from '../core/nats.ts';
import { subjects } from '../core/subjects.ts';
import { NexmarkModel, compileNexmarkConfig, type NexmarkOptions } from '../sdk/nexmark.ts';

export interface NexmarkPublishOptions extends Omit<NexmarkOptions, 'paced' | 'watermark' | 'name'> {
  /** @default "nexmark" */
  stream?: string;
  /** Publishes awaiting acknowledgement at most. @default 4000 */
  window?: number;
  /** Events per message at most: above 1, frames (core/record-frame.ts). @default 1 */
  frameRecords?: number;
  onProgress?: (published: number) => void;
}

/** Publishes events 0 … events-1; resolves once all are acknowledged, with the bytes sent. */
export async function publishNexmark(nc: NatsConnection, options: NexmarkPublishOptions): Promise<{ published: number; bytes: number; elapsedMs: number }> {
  const stream = options.stream ?? 'nexmark';
  const config = compileNexmarkConfig(options);
  if (config.events === 0) throw new RangeError('nexmark publish needs a number of events');
  const model = new NexmarkModel(config);
  await ensureSourceStream(nc, { stream, partitions: config.partitions });
  const encoder = new TextEncoder();
  const startedAt = performance.now();
  const frameRecords = options.frameRecords ?? 1;
  // Framed: acknowledgements count frames, each of frameRecords events but the last per partition.
  const framed = frameRecords > 1;
  const onAck = options.onProgress && ((acks: number) => options.onProgress!(framed ? Math.min(config.events, acks * frameRecords) : acks));
  using publisher = new BulkPublisher(nc, { window: options.window ?? (framed ? 256 : 4000), ...(onAck && { onAck }) });
  const frames = framed ? new FrameBuilder({ maxRecords: frameRecords }) : undefined;
  const frameHeaders = headers();
  frameHeaders.set(FRAME_HEADER, FRAME_FORMAT_NDJSON);
  let bytes = 0;
  for (let n = 0; n < config.events; n++) {
    const subject = subjects.sourcePartition(stream, n % config.partitions);
    const text = JSON.stringify(model.eventAt(n));
    if (frames === undefined) {
      const data = encoder.encode(text);
      bytes += data.length;
      await publisher.publish(subject, data);
      continue;
    }
    bytes += Buffer.byteLength(text);
    const full = frames.add(subject, text);
    if (full !== undefined) await publisher.publish(subject, full, frameHeaders);
  }
  for (const [subject, payload] of frames?.drain() ?? []) await publisher.publish(subject, payload, frameHeaders);
  await publisher.flush();
  return { published: framed ? config.events : publisher.acknowledged, bytes, elapsedMs: performance.now() - startedAt };
}

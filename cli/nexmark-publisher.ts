// The Nexmark events of sdk/nexmark.ts into a JetStream stream, so that the Nexmark jobs can read
// the same events from a real stream: event n goes to subject `<stream>.<n mod partitions>`, which
// is the split that would make it as a generator, so each split reads its events in time order.
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { ensureSourceStream, type NatsConnection } from '../core/nats.ts';
import { subjects } from '../core/subjects.ts';
import { NexmarkModel, compileNexmarkConfig, type NexmarkOptions } from '../sdk/nexmark.ts';

export interface NexmarkPublishOptions extends Omit<NexmarkOptions, 'paced' | 'watermark' | 'name'> {
  /** @default "nexmark" */
  stream?: string;
  /** Publishes awaiting acknowledgement at most. @default 4000 */
  window?: number;
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
  using publisher = new BulkPublisher(nc, { window: options.window ?? 4000, ...(options.onProgress && { onAck: options.onProgress }) });
  let bytes = 0;
  for (let n = 0; n < config.events; n++) {
    const data = encoder.encode(JSON.stringify(model.eventAt(n)));
    bytes += data.length;
    await publisher.publish(subjects.sourcePartition(stream, n % config.partitions), data);
  }
  await publisher.flush();
  return { published: publisher.acknowledged, bytes, elapsedMs: performance.now() - startedAt };
}

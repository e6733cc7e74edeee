// Publishing NDJSON records into a job's source stream, the way the job expects them: each
// record on subject partition `<stream>.<p>` chosen by its key (core/key-groups.ts
// partitionForKey), so all records of one key stay in one split and in order.
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { connectNats, defaultReplicas, ensureSourceStream, parseSourceDescription, type NatsConnection } from '../core/nats.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { subjects } from '../core/subjects.ts';
import { CliError } from './errors.ts';
import { inboxPrefixes, type ClientConnectionOptions } from '../core/nats-connect.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { FRAME_FORMAT_NDJSON, FRAME_HEADER, FrameBuilder, countFrameRecords } from '../core/record-frame.ts';
import { headers } from '@nats-io/transport-node';

/**
 * Publishes awaiting acknowledgement at most: a bounded window keeps the pipe full without
 * letting memory grow with the input (one awaited publish at a time is a few thousand per second).
 */
export const DEFAULT_PUBLISH_WINDOW = 1_000;

export interface SourceTarget {
  stream: string;
  partitions: number;
  /** Top-level field records are partitioned by; without it records go round-robin. */
  partitionKey?: string;
}

export interface CreateSourceOptions {
  partitions: number;
  partitionKey?: string;
}

export async function connectToNats(servers: string, name: string, auth: ClientConnectionOptions = {}): Promise<NatsConnection> {
  try {
    return await connectNats({ servers, name, auth, inboxPrefix: inboxPrefixes.producer });
  } catch (e) {
    if (/authorization violation|authentication/i.test((e as Error).message)) {
      throw new CliError(`NATS at ${servers} refused the login: give credentials (--nats-user with --nats-password-file, or EDDY_NATS_USER and EDDY_NATS_PASSWORD_FILE; eddy up prints them)`, { cause: e });
    }
    throw new CliError(`cannot reach NATS at ${servers} (is it running? set --nats or EDDY_NATS): ${(e as Error).message}`, { cause: e });
  }
}

function isStreamNotFound(e: unknown): boolean {
  return (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound) || /stream not found/i.test((e as Error)?.message ?? '');
}

/** Message count of a stream, or undefined when the stream does not exist. */
export async function streamMessageCount(nc: NatsConnection, stream: string): Promise<number | undefined> {
  const jsm = await jetstreamManager(nc);
  try {
    return (await jsm.streams.info(stream)).state.messages;
  } catch (e) {
    if (isStreamNotFound(e)) return undefined;
    throw e;
  }
}

/**
 * Where records for `stream` go. The partition count and key come from the stream's
 * description, written when the job's submit created it; `create` makes the stream if missing.
 */
export async function resolveSourceTarget(nc: NatsConnection, stream: string, create?: CreateSourceOptions): Promise<SourceTarget> {
  const jsm = await jetstreamManager(nc);
  let description: string | undefined;
  try {
    description = (await jsm.streams.info(stream)).config.description;
  } catch (e) {
    if (!isStreamNotFound(e)) throw e;
    if (!create) {
      throw new CliError(`stream ${stream} does not exist: submitting the job that reads it creates it (or pass --partitions N --key <field> to create it here)`);
    }
    // Replicated three times on a NATS cluster of three or more servers, as the coordinator does.
    await ensureSourceStream(nc, { stream, partitions: create.partitions, ...(create.partitionKey ? { partitionKey: create.partitionKey } : {}) }, defaultReplicas(nc));
    return { stream, partitions: create.partitions, ...(create.partitionKey ? { partitionKey: create.partitionKey } : {}) };
  }
  const source = parseSourceDescription(description);
  if (source) return { stream, partitions: source.partitions, ...(source.partitionKey ? { partitionKey: source.partitionKey } : {}) };
  if (create) return { stream, partitions: create.partitions, ...(create.partitionKey ? { partitionKey: create.partitionKey } : {}) };
  throw new CliError(`stream ${stream} is not an eddy source (its description names no partitions): pass --partitions N [--key <field>]`);
}

/**
 * The partition of one NDJSON line. A line that is not a JSON object or lacks the key still
 * goes somewhere (partition 0): the job reads it and dead-letters it with the reason, which is
 * where a bad record should be found, rather than dropped here.
 */
export function partitionOfLine(line: string, target: SourceTarget, index: number): number {
  const key = target.partitionKey;
  if (key === undefined) return index % target.partitions;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return 0;
  }
  if (typeof record !== 'object' || record === null) return 0;
  const value = (record as Record<string, unknown>)[key];
  if (value === undefined || value === null) return 0;
  return partitionForKey(String(value), target.partitions);
}

export interface PublishOptions {
  /** Publishes awaiting their acknowledgement at most. @default 1000 */
  window?: number;
  /**
   * Records per message at most: above 1, records go in frames (core/record-frame.ts), several
   * to a JetStream message. @default 1
   */
  frameRecords?: number;
  /** Called as acknowledgements arrive, with the count acknowledged so far. */
  onProgress?: (published: number) => void;
}

export interface PublishResult {
  published: number;
  elapsedMs: number;
}

/** Publishes each non-empty line to its partition; resolves once every publish is acknowledged. */
export async function publishLines(nc: NatsConnection, target: SourceTarget, lines: AsyncIterable<string> | Iterable<string>, options: PublishOptions = {}): Promise<PublishResult> {
  const encoder = new TextEncoder();
  const startedAt = performance.now();
  const frameRecords = options.frameRecords ?? 1;
  // Framed: acknowledgements count frames; records are counted as their frames are published.
  const frames = frameRecords > 1 ? new FrameBuilder({ maxRecords: frameRecords }) : undefined;
  const frameSizes: number[] = [];
  let acknowledgedRecords = 0;
  let acknowledgedFrames = 0;
  const onAck = (acks: number) => {
    if (frames === undefined) acknowledgedRecords = acks;
    else while (acknowledgedFrames < acks && acknowledgedFrames < frameSizes.length) acknowledgedRecords += frameSizes[acknowledgedFrames++]!;
    options.onProgress?.(acknowledgedRecords);
  };
  using publisher = new BulkPublisher(nc, { window: options.window ?? DEFAULT_PUBLISH_WINDOW, onAck });
  const frameHeaders = headers();
  frameHeaders.set(FRAME_HEADER, FRAME_FORMAT_NDJSON);
  const publishFrame = (subject: string, payload: Uint8Array) => {
    frameSizes.push(countFrameRecords(payload));
    return publisher.publish(subject, payload, frameHeaders);
  };
  let index = 0;
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const subject = subjects.sourcePartition(target.stream, partitionOfLine(line, target, index++));
      if (frames === undefined) {
        await publisher.publish(subject, encoder.encode(line));
        continue;
      }
      const full = frames.add(subject, line);
      if (full !== undefined) await publishFrame(subject, full);
    }
    if (frames !== undefined) for (const [subject, payload] of frames.drain()) await publishFrame(subject, payload);
    await publisher.flush();
  } catch (e) {
    throw new CliError(`publishing to ${target.stream} failed after ${acknowledgedRecords} records: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  return { published: acknowledgedRecords, elapsedMs: performance.now() - startedAt };
}

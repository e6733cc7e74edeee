// One way to connect to NATS for every process, and the JetStream streams Eddy owns.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { DEAD_LETTER_STREAM, subjects } from './subjects.ts';
import type { SinkSpec, SourceSpec } from './manifest.ts';
import { InvalidArgumentError } from './errors.ts';
import { natsAuthOptions, type ClientConnectionOptions } from './nats-connect.ts';
import type { Logger } from './logger.ts';

export type { NatsConnection };

export interface NatsOptions {
  /** Comma-separated server URLs. @default "nats://127.0.0.1:4222" */
  servers?: string;
  /** Connection name shown by the server's monitoring. */
  name: string;
  /** Credentials and TLS (core/nats-connect.ts). @default none */
  auth?: ClientConnectionOptions;
  /** Prefix of this connection's reply subjects (inboxPrefixes in core/nats-connect.ts). @default "_INBOX" */
  inboxPrefix?: string;
  /** Where a warning about the server's version goes (natsServerWarning). @default not checked */
  logger?: Logger;
}

export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: (options.servers ?? 'nats://127.0.0.1:4222').split(','),
    name: options.name,
    ...natsAuthOptions(options.auth ?? {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    // Keep reconnecting; an in-flight channel batch lost meanwhile is detected by sequence numbers.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  const warning = natsServerWarning(nc.info?.version);
  if (warning !== undefined) options.logger?.warn({ natsServer: nc.info?.version }, warning);
  return nc;
}

/** The first nats-server without the replay slowdown that natsServerWarning describes. */
export const NATS_SERVER_MINIMUM = '2.9.15';

/**
 * Why the connected nats-server is a problem, or undefined. Before 2.9.15 the server counts a
 * filtered consumer's pending messages again, scanning its message block, for every message it
 * delivers once the consumer is past the middle of the stream's newest block: a source split
 * replaying after a recovery reads a few hundred messages a second (docs/STACK-NOTES.md).
 */
export function natsServerWarning(version: string | undefined): string | undefined {
  if (version === undefined || !olderThan(version, NATS_SERVER_MINIMUM)) return undefined;
  return `nats-server ${version} is older than ${NATS_SERVER_MINIMUM}: a source's replay after a recovery or a move can slow to a few hundred records a second (upgrade nats-server)`;
}

/** True when dotted version `a` (e.g. "2.9.10", "2.10.27-RC1") is below `b`. */
function olderThan(a: string, b: string): boolean {
  const parts = (v: string) => v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((x) => Number.parseInt(x, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
}

// The source's partition count and key field ride in the stream description (nats-server 2.9
// has no stream metadata), so `eddy publish` can partition by key without asking anybody.
const DESCRIPTION = /^eddy source partitions=(\d+)(?: key=([A-Za-z0-9_.-]+))?$/;

export function describeSource(spec: Pick<SourceSpec, 'partitions' | 'partitionKey'>): string {
  return `eddy source partitions=${spec.partitions}${spec.partitionKey ? ` key=${spec.partitionKey}` : ''}`;
}

export function parseSourceDescription(description: string | undefined): { partitions: number; partitionKey?: string } | undefined {
  const m = DESCRIPTION.exec(description ?? '');
  if (!m) return undefined;
  return { partitions: Number(m[1]), ...(m[2] ? { partitionKey: m[2] } : {}) };
}

/**
 * The replica count for what Eddy creates in JetStream when none is configured: 3 on a cluster of
 * three or more servers (each server advertises the cluster's client URLs), else 1.
 */
export function defaultReplicas(nc: NatsConnection): number {
  const urls = new Set((nc.info as { connect_urls?: string[] } | undefined)?.connect_urls ?? []);
  return urls.size >= 3 ? 3 : 1;
}

/**
 * Creates a stream when it does not exist, with `replicas` copies (an existing stream keeps its
 * own: the README says how to make a source stream R3).
 */
async function ensureStream(jsm: JetStreamManager, name: string, streamSubjects: string[], description?: string, replicas = 1): Promise<void> {
  try {
    await jsm.streams.info(name);
  } catch (e) {
    if (!/stream not found/i.test((e as Error).message)) throw e;
    await jsm.streams.add({ name, subjects: streamSubjects, num_replicas: replicas, ...(description ? { description } : {}) });
  }
}

/** Creates the source stream `<stream>` over subjects `<stream>.*` when it does not exist. @default replicas 1 */
export async function ensureSourceStream(nc: NatsConnection, spec: Pick<SourceSpec, 'stream' | 'partitions' | 'partitionKey'>, replicas = 1): Promise<void> {
  await ensureStream(await jetstreamManager(nc), spec.stream, [`${spec.stream}.*`], describeSource(spec), replicas);
}

export async function ensureSinkStreams(nc: NatsConnection, sinks: readonly SinkSpec[], replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const s of sinks) {
    if (s.kind === 'jetstream') await ensureStream(jsm, s.stream, [s.subject], undefined, replicas);
    if (s.kind === 'jetstream-routed') await ensureRoutedStream(jsm, s.stream, s.subjectPrefix, replicas);
  }
}

/** A routed sink's stream must take every subject under its prefix: created so, or refused. */
async function ensureRoutedStream(jsm: JetStreamManager, name: string, subjectPrefix: string, replicas: number): Promise<void> {
  const wanted = `${subjectPrefix}.>`;
  await ensureStream(jsm, name, [wanted], undefined, replicas);
  const { subjects } = (await jsm.streams.info(name)).config;
  if (!(subjects ?? []).includes(wanted)) {
    throw new InvalidArgumentError(`sink stream ${name} exists with subjects ${JSON.stringify(subjects ?? [])}; a routed sink needs it to take ${wanted}`);
  }
}

export async function ensureDeadLetterStream(nc: NatsConnection, replicas = 1): Promise<void> {
  await ensureStream(await jetstreamManager(nc), DEAD_LETTER_STREAM, [subjects.deadLetterAll], undefined, replicas);
}

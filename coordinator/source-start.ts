// Resolves a source's startAt (core/start-at.ts) into a definite stream sequence per split, once,
// when a job first starts. Those positions are kept with the job (and in the job store) and used
// by every deploy until a checkpoint completes: the first checkpoint records them (a split that
// read nothing reports its start position again), and restores go on from the checkpoints'.
//
// A time resolves to one stream sequence for every split: the first message JetStream stored at
// or after it. Stream sequences grow with store time, so a split's own messages at or after the
// time are exactly its messages from that sequence on; the split's filtered consumer skips the
// others. nats-server 2.9 has no message-by-time lookup (the get API's start_time is 2.11); a
// consumer created with DeliverPolicy.StartTime places itself with the store's own time index,
// and its info reports the sequence before the first message it would deliver.
import { AckPolicy, DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SourcePosition } from '../core/control.ts';
import type { SourceSpec } from '../core/manifest.ts';
import type { StartAtSpec } from '../core/start-at.ts';

/** Stream sequence from which every split of `source` starts, per split. */
export async function resolveStartPositions(nc: NatsConnection, source: Pick<SourceSpec, 'stream' | 'partitions'>, startAt: StartAtSpec): Promise<SourcePosition[]> {
  const sequence = await resolveStartSequence(nc, source.stream, startAt);
  return Array.from({ length: source.partitions }, (_, split) => ({ split, nextSequence: sequence }));
}

async function resolveStartSequence(nc: NatsConnection, stream: string, startAt: StartAtSpec): Promise<number> {
  switch (startAt.kind) {
    case 'sequence':
      return startAt.sequence;
    case 'earliest':
      return 1;
    case 'latest': {
      const jsm = await jetstreamManager(nc);
      return (await jsm.streams.info(stream)).state.last_seq + 1;
    }
    case 'time': {
      const jsm = await jetstreamManager(nc);
      // Not delivering anything: the consumer only places itself. Deleted at once; the
      // inactivity threshold removes it should this coordinator die in between.
      const info = await jsm.consumers.add(stream, {
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date(startAt.timeUnixMs).toISOString(),
        ack_policy: AckPolicy.None,
        inactive_threshold: CONSUMER_INACTIVE_THRESHOLD_NS,
      });
      await jsm.consumers.delete(stream, info.name).catch(() => undefined);
      // delivered.stream_seq is the sequence before the first message at or after the time: the
      // stream's last sequence when every message is older.
      return info.delivered.stream_seq + 1;
    }
  }
}

/** Five seconds, in the nanoseconds JetStream takes. */
const CONSUMER_INACTIVE_THRESHOLD_NS = 5_000_000_000;

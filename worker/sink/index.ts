// Sinks of a job's stages: JetStream (exactly-once or at-least-once), plain NATS subjects and
// files in the object store. Exactly-once output is held per checkpoint and published (or
// committed) by the coordinator once that checkpoint completes.
export { MAX_PENDING_SINK_WRITES, isExactlyOnce, isFilePart, openSinks } from './sinks.ts';
export type { CheckpointOutput, Sink } from './sinks.ts';

// What a checkpoint acknowledgement may say, checked before the checkpoint coordinator counts it
// (README, "Security"): it comes from a worker of the checkpoint, its sections are of key groups
// that worker owns, its source positions are of splits it reads, and every object it names is
// under the job's own prefix (a files-sink part goes to a path of one of the job's files sinks).
// Anything else is forged or corrupt: dropped and logged, never written into a _metadata.
import { ForgedMessageError, type CheckpointAck } from '../core/control.ts';
import { excerpt } from '../core/errors.ts';
import type { KeyGroupRange } from '../core/key-groups.ts';
import { isStagedFileKey, objectKeys } from '../core/object-keys.ts';

export interface AckScope {
  jobId: string;
  maxParallelism: number;
  /**
   * Key groups and splits of each worker, as assigned when the checkpoint was triggered and as
   * assigned now: a part may be of either side of a key-group move at that checkpoint.
   */
  owners: ReadonlyArray<ReadonlyMap<string, { keyGroups: readonly KeyGroupRange[]; splits: readonly number[] }>>;
  /** Paths of the job's files sinks (part files are committed under `<path>/`). */
  filesSinkPaths: readonly string[];
}

const inRanges = (ranges: readonly KeyGroupRange[], kg: number) => ranges.some((r) => kg >= r.start && kg <= r.end);
const SAFE_KEY = /^[A-Za-z0-9_.=@~/-]+$/;

function safeKey(key: string): boolean {
  return SAFE_KEY.test(key) && !key.split('/').some((s) => s === '' || s === '.' || s === '..');
}

/** Throws ForgedMessageError naming the first thing the ack may not say. */
export function checkCheckpointAck(ack: CheckpointAck, scope: AckScope): void {
  const forged = (what: string) => new ForgedMessageError(`checkpoint ${ack.checkpointId} of job ${excerpt(ack.jobId)}: worker ${excerpt(ack.workerId)} ${what}`);
  const owned = scope.owners.map((m) => m.get(ack.workerId)).filter((a) => a !== undefined);
  if (owned.length === 0) throw forged('is not assigned to the job');
  const ownsKeyGroup = (kg: number) => Number.isSafeInteger(kg) && kg >= 0 && kg < scope.maxParallelism && owned.some((a) => inRanges(a.keyGroups, kg));
  for (const s of ack.sources) if (!owned.some((a) => a.splits.includes(s.split))) throw forged(`reports a position of split ${s.split}, which it does not read`);
  const state = objectKeys.state(scope.jobId);
  const checkpoints = objectKeys.checkpoints(scope.jobId);
  for (const part of ack.parts) {
    for (const ref of [...part.deltas, ...part.bases]) {
      if (!ref.key.startsWith(state) || !safeKey(ref.key)) throw forged(`names a state object outside the job: ${excerpt(ref.key)}`);
      for (const s of ref.sections) if (!ownsKeyGroup(s.keyGroup)) throw forged(`sends state of key group ${s.keyGroup}, which it does not own`);
    }
    if (part.outputKey && (!part.outputKey.startsWith(checkpoints) || !safeKey(part.outputKey))) throw forged(`names an output object outside the job: ${excerpt(part.outputKey)}`);
    for (const f of part.files ?? []) {
      if (!f.stagedKey.startsWith(checkpoints) || !safeKey(f.stagedKey) || !isStagedFileKey(f.stagedKey)) throw forged(`stages a part file outside the job: ${excerpt(f.stagedKey)}`);
      if (!safeKey(f.finalKey) || !f.finalKey.endsWith('.ndjson') || !scope.filesSinkPaths.some((p) => f.finalKey.startsWith(`${p}/`))) {
        throw forged(`commits a part file outside the job's files sinks: ${excerpt(f.finalKey)}`);
      }
    }
  }
}

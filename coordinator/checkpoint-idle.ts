// Whether a job has done anything since its latest completed checkpoint, from the counters its
// workers send in every heartbeat. A job with no new input and nothing due skips its periodic
// checkpoints: no trigger, no barriers, no uploads while idle (checkpoint-coordinator.ts).
//
// Why counters are enough: every record read by a source, processed by a stage, emitted (by a
// record, a timer or an async completion) or dead-lettered moves a counter. A worker reports its
// counters now and at each checkpoint it cut; when its newest cut is the latest completed
// checkpoint and the counters have not moved since, that checkpoint already holds all it did. A
// timer that fires later and emits moves recordsOut, and the next heartbeat makes the job busy
// again, so a checkpoint follows within a heartbeat of the change. A change without any counter
// (a processing-time timer that only updates state) waits for the next checkpoint, which is what a
// recovery would replay anyway: the timer is in the checkpoint and fires again.
import type { JobCounters, StageCounters } from '../core/control.ts';

/**
 * True when every worker's last heartbeat shows nothing done since checkpoint `checkpointId`
 * (of the job's current epoch): its newest cut is that checkpoint and its counters equal that cut's.
 * A worker without a report of this epoch, or a report from before the cut, makes the job busy.
 */
export function idleSince(checkpointId: number, epoch: number, workers: readonly string[], report: (worker: string) => JobCounters | undefined): boolean {
  if (workers.length === 0) return false;
  for (const worker of workers) {
    const r = report(worker);
    if (r === undefined || Number(r.epoch ?? 0) !== epoch) return false;
    const cuts = r.cuts ?? [];
    const newest = cuts[cuts.length - 1];
    // A newer cut (an aborted checkpoint's) holds changes the completed one does not.
    if (newest === undefined || Number(newest.checkpointId) !== checkpointId) return false;
    if (!sameCounters(newest.stages, r.stages)) return false;
  }
  return true;
}

function sameCounters(cut: readonly StageCounters[], now: readonly StageCounters[]): boolean {
  if (cut.length !== now.length) return false;
  for (const n of now) {
    const c = cut.find((x) => x.stageId === n.stageId);
    if (c === undefined) return false;
    if (Number(c.recordsIn) !== Number(n.recordsIn) || Number(c.recordsOut) !== Number(n.recordsOut) || Number(c.deadLetters) !== Number(n.deadLetters)) return false;
  }
  return true;
}

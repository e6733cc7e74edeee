/** Per-stage counters of one job on one worker, reported in heartbeats. */
export class StageCounters {
  readonly stageId: string;
  recordsIn = 0;
  recordsOut = 0;
  deadLetters = 0;

  constructor(stageId: string) {
    this.stageId = stageId;
  }

  snapshot() {
    return { stageId: this.stageId, recordsIn: this.recordsIn, recordsOut: this.recordsOut, deadLetters: this.deadLetters };
  }
}

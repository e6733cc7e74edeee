// The tasks a job runs on a worker: source tasks (one per split read) and keyed tasks (the key
// groups of one keyed stage), with what they run: the chained operators and asyncMap of a stage,
// its output (sinks, channels to the next stage), keyed context, timers and watermarks, the error
// policy (dead letters) and the per-stage counters.
export { DeadLetters } from './dead-letters.ts';
export { ErrorPolicy } from './error-policy.ts';
export { KeyedTask } from './keyed-task.ts';
export { SourceTask } from './source-task.ts';
export { StageCounters } from './stage-counters.ts';
export { createStageOutput } from './stage-output.ts';
export type { StageOutput } from './stage-output.ts';

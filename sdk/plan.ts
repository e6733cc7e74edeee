// The plan of a job as the runtime runs it: each stage's manifest entry with the user functions of
// its operators (Job.plan(), called by the worker on the loaded bundle). Internal to Eddy: the
// worker imports it from here; '@eddy/sdk' (sdk/index.ts) does not export it to job authors.
import type { AsyncOperatorSpec, JobManifest, OperatorKind, StageSpec } from '../core/manifest.ts';
import type { GeneratorSource } from './generator.ts';

/** An operator with its user function, as the worker runs it. */
export interface OperatorImpl {
  kind: OperatorKind;
  name: string;
  /** map/filter/flatMap/keyBy: the function; process: input 0's function. broadcast: none. */
  fn: (...args: never[]) => unknown;
  /** process only: the onTimer callback. */
  onTimer?: (...args: never[]) => unknown;
  /**
   * process only: the function of each stage input, by input index (processElement1/2, or
   * processElement and processBroadcastElement). A one-input stage has [fn].
   */
  inputs?: Array<(...args: never[]) => unknown>;
  /** asyncMap only: its options, defaults applied. */
  async?: AsyncOperatorSpec;
}

export interface StagePlan {
  spec: StageSpec;
  operators: OperatorImpl[];
  /** Source stage only: the timestamp assigner. */
  timestamp?: (event: unknown) => number;
  /** Generator source stage only: event n and its event time (sdk/generator.ts). */
  generator?: Pick<GeneratorSource<unknown>, 'eventAt' | 'timeAt'>;
}

export interface JobPlan {
  manifest: JobManifest;
  stages: StagePlan[];
}

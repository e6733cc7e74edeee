// What a job author imports as '@eddy/sdk'. No runtime dependencies: a bundle treats this
// module as external and the worker provides it (core/bundle.ts).
export { job, Job, DataStream, KeyedStream } from './job.ts';
export type { JobOptions, SourceOptions, ProcessOptions, FeatureDeclaration, JobPlan, StagePlan, OperatorImpl } from './job.ts';
export { valueState, mapState } from './state.ts';
export type { ValueState, MapState, ValueStateDescriptor, MapStateDescriptor, StateDescriptor } from './state.ts';
export type { ProcessContext, ProcessFunction } from './context.ts';
export { jetstream, natsSubject } from './sinks.ts';
export type { SinkSpec } from './sinks.ts';

// What a job author imports as '@eddy/sdk'. No runtime dependencies: a bundle treats this
// module as external and the worker provides it (core/bundle.ts). The runtime's view of a job
// (its plan: sdk/plan.ts) is not part of it.
export { job, Job } from './job.ts';
export type { DataStream, KeyedStream, WindowedStream, BroadcastStream, ConnectedStreams, BroadcastConnectedStream } from './streams.ts';
export type { JobOptions, SourceOptions, WatermarkOptions, WindowOptions, ProcessOptions, BroadcastProcessOptions, FeatureDeclaration } from './options.ts';
export type { AsyncContext, AsyncFunction, AsyncMapOptions, AsyncRetryOptions } from './async-map.ts';
export type { StartAtOption } from '../core/start-at.ts';
export { valueState, mapState, listState, reducingState, aggregatingState } from './state.ts';
export type {
  ValueState,
  MapState,
  ListState,
  ReducingState,
  AggregatingState,
  MapRange,
  AggregateFunction,
  StateSerializer,
  StateOptions,
  StateKind,
  ValueStateDescriptor,
  MapStateDescriptor,
  ListStateDescriptor,
  ReducingStateDescriptor,
  AggregatingStateDescriptor,
  StateDescriptor,
} from './state.ts';
export type {
  ProcessContext,
  ProcessFunction,
  Timers,
  TimerContext,
  OnTimerFunction,
  CoProcessFunction,
  KeyedBroadcastProcessFunction,
  KeyedBroadcastContext,
  KeyedBroadcastOnTimerFunction,
  BroadcastContext,
  ReadOnlyBroadcastState,
} from './context.ts';
export { jetstream, natsSubject, files, jetstreamRouted } from './sinks.ts';
export type { SinkSpec, FilesOptions, RoutedRecord } from './sinks.ts';
export { tumblingWindows, slidingWindows, sessionWindows, assignWindows, mergeSession } from './windows.ts';
export type { TimeWindow, WindowAssigner } from './windows.ts';
export { LATE_TAG } from './window-operator.ts';
export type { WindowResult } from './window-operator.ts';
export { datagen, SeededRandom, splitShare } from './generator.ts';
export type { GeneratorSource, DatagenOptions, GeneratorSpec } from './generator.ts';
export { nexmark, NexmarkModel, compileNexmarkConfig } from './nexmark.ts';
export type { NexmarkEvent, NexmarkOptions, NexmarkConfig, Person, Auction, Bid } from './nexmark.ts';

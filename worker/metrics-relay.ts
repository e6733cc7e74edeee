// Metrics of a job isolated in a thread (worker/isolated-job.ts), carried to the worker's
// Prometheus endpoint. The job's thread has no OpenTelemetry SDK of its own (a second meter
// provider per thread, each with its own endpoint, would split a worker's metrics): its
// WorkerMetrics is built on the relay's meter, whose histograms and counters only collect what
// they are given, by instrument and attribute set; the thread sends the collected measurements
// with its status (every 250 ms), and the worker's thread records them into its own instruments
// of the same names (WorkerMetrics.replay). Observable instruments are not relayed: the worker
// observes an isolated job through the stage and split samples of its status, as it observes a
// job of its own thread.
import { createNoopMeter, type Attributes, type Meter } from '@opentelemetry/api';

/** What one instrument recorded for one attribute set since the last flush, in order. */
export interface RelayedMeasurements {
  instrument: string;
  attributes: Attributes;
  values: number[];
}

export class MetricsRelay {
  /** The meter a job thread's WorkerMetrics is built on. */
  readonly meter: Meter;
  /**
   * By instrument, then by attribute object: the recorders of worker/worker-metrics.ts build
   * their attribute objects once per task, so identity groups them without serializing.
   */
  readonly #pending = new Map<string, Map<Attributes, number[]>>();

  constructor() {
    const noop = createNoopMeter();
    const recorder = (name: string) => {
      const push = (value: number, attributes: Attributes = {}): void => this.#push(name, value, attributes);
      return { record: push, add: push };
    };
    this.meter = {
      createHistogram: recorder,
      createCounter: recorder,
      createUpDownCounter: recorder,
      createGauge: recorder,
      createObservableGauge: (name, options) => noop.createObservableGauge(name, options),
      createObservableCounter: (name, options) => noop.createObservableCounter(name, options),
      createObservableUpDownCounter: (name, options) => noop.createObservableUpDownCounter(name, options),
      addBatchObservableCallback: () => undefined,
      removeBatchObservableCallback: () => undefined,
    };
  }

  #push(instrument: string, value: number, attributes: Attributes): void {
    let byAttributes = this.#pending.get(instrument);
    if (byAttributes === undefined) this.#pending.set(instrument, (byAttributes = new Map()));
    const values = byAttributes.get(attributes);
    if (values === undefined) byAttributes.set(attributes, [value]);
    else values.push(value);
  }

  /** What was recorded since the last call; undefined when nothing was. */
  flush(): RelayedMeasurements[] | undefined {
    if (this.#pending.size === 0) return undefined;
    const out: RelayedMeasurements[] = [];
    for (const [instrument, byAttributes] of this.#pending) for (const [attributes, values] of byAttributes) out.push({ instrument, attributes, values });
    this.#pending.clear();
    return out;
  }
}

// Reading keyed state from outside the job: feature queries answered for the key groups this
// worker owns (over NATS, and directly at the worker's serving endpoint), and feature watches that
// publish changed values after each processed batch.
export { QueryResponder } from './query-responder.ts';
export { WatchRegistry } from './watch-registry.ts';
export { ServingEndpoint } from './serving-endpoint.ts';
export { natsInbox, type QueryInbox } from './query-inbox.ts';

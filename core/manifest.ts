// The job graph, produced by `eddy build` from the job's own builder calls and shipped next to
// the bundle (docs/ARCHITECTURE.md, "Bundles"): what everybody imports of it, by concept.
export * from './manifest-format.ts';
export * from './manifest-validation.ts';
export * from './manifest-splits.ts';
export * from './manifest-graph.ts';

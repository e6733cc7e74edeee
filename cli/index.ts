// What cli/ offers the rest of the repository (benchmarks, scripts): the local cluster
// supervisor, the gRPC client, and publishing into a source stream.
export { startLocalCluster, findNatsServer, type LocalCluster, type LocalClusterOptions, type LocalProcess } from './local-cluster.ts';
export { EddyClient, type EddyClientOptions, type FeatureView, type JobInfo, type FeatureValue, type WorkerInfo } from './client.ts';
export { connectToNats, resolveSourceTarget, publishLines, partitionOfLine, streamMessageCount, type SourceTarget, type PublishOptions, type PublishResult } from './source-publisher.ts';
export { BulkPublisher, type BulkPublisherOptions } from '../core/jetstream-publisher.ts';
export { waitForJobRunning, waitUntilProcessed, isProcessed } from './job-progress.ts';
export { buildJob, readJobBundle, type JobBundle } from './job-bundle.ts';

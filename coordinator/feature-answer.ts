// What FeatureService answers are made of, shared by the router and the watch streams.

export { MAX_BATCH_IDS } from '../core/feature-limits.ts';
/** The hint given with UNAVAILABLE: moves and recoveries usually settle within this. */
export const RETRY_AFTER_MS = 250;

export type FeatureViewName = 'latest' | 'committed';

export interface FeatureQuery {
  jobId: string;
  feature: string;
  entityIds: readonly string[];
  view: FeatureViewName;
  /** As-of read: the value current at this event time (ms since the epoch). */
  asOfUnixMs?: number;
  /** Absolute deadline (Date.now() scale): every retry and NATS request ends by then. */
  deadlineAtMs: number;
}

export interface FeatureAnswer {
  entityId: string;
  found: boolean;
  valueJson: string;
  keyGroup: number;
  /** Event time of the last update (as-of: of the version), when known. */
  eventTimeUnixMs: number | undefined;
  /** The last completed checkpoint the answering worker holds (0: none). */
  checkpointId: number;
  /** LATEST: includes changes after checkpointId. */
  uncommitted: boolean;
  beyondRetention: boolean;
}


// Reading files-sink part files back from the object store, for assertions (S3 or file://).
import { openObjectStore, type ObjectStore } from '../../core/object-store.ts';
import type { Cluster } from './eddy.ts';

/** The cluster's object store as the processes see it (S3 credentials from the cluster's env). */
export function clusterStore(cluster: Cluster, s3?: { endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } }): ObjectStore {
  return openObjectStore(cluster.storeUrl, s3 ? { endpoint: s3.endpoint, credentials: s3.credentials } : {});
}

export interface PartFile {
  key: string;
  /** The checkpoint the part belongs to, from its name (part-<checkpoint>-<task>-<index>.ndjson). */
  checkpointId: number;
  lines: string[];
}

const PART = /\/part-(\d+)-[^/]+-\d+\.ndjson$/;

/** Every part file under `prefix`, sorted by key, with its lines. */
export async function readPartFiles(store: ObjectStore, prefix: string): Promise<PartFile[]> {
  const keys = (await store.list(prefix.endsWith('/') ? prefix : `${prefix}/`)).filter((k) => PART.test(k));
  const out: PartFile[] = [];
  for (const key of keys) {
    const text = new TextDecoder().decode(await store.get(key));
    out.push({ key, checkpointId: Number(PART.exec(key)![1]), lines: text.split('\n').filter((l) => l !== '') });
  }
  return out;
}

/** Just the names (no reads): for the "visible only after its checkpoint completed" check. */
export async function listPartFiles(store: ObjectStore, prefix: string): Promise<Array<{ key: string; checkpointId: number }>> {
  const keys = (await store.list(prefix.endsWith('/') ? prefix : `${prefix}/`)).filter((k) => PART.test(k));
  return keys.map((key) => ({ key, checkpointId: Number(PART.exec(key)![1]) }));
}

// A cluster whose object store is S3 (s3rver here): the coordinator and worker roles take
// --store s3://… and --s3-endpoint, and credentials from the AWS environment variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { objectKeys } from '../../core/object-keys.ts';
import { S3ObjectStore } from '../../core/s3-object-store.ts';
import { REPO_ROOT, startCluster, startS3Server, waitFor } from '../kit/index.ts';

test('s3 store - a cluster on s3://<bucket>/eddy keeps the submitted bundle in the bucket and runs the job', { timeout: 120_000 }, async () => {
  await using s3 = await startS3Server();
  await using cluster = await startCluster({
    workers: 1,
    storeUrl: `s3://${s3.bucket}/eddy`,
    s3Endpoint: s3.endpoint,
    env: { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey },
  });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-s3-cluster-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  using store = new S3ObjectStore({ bucket: s3.bucket, prefix: 'eddy', endpoint: s3.endpoint, credentials: s3.credentials });
  try {
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/customer-experience/job.ts'), join(dir, 'cache'));
    const submitted = await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    assert.equal(submitted.jobId, 'customer-experience');

    const key = objectKeys.bundle('customer-experience', bundle.sha256);
    assert.equal(key, `jobs/customer-experience/bundles/${bundle.sha256}.js`);
    assert.ok(await store.exists(key), `${key} is in bucket ${s3.bucket} under eddy/`);
    assert.deepEqual(Buffer.from(await store.get(key)), Buffer.from(bundle.code), 'the stored bundle is the one submitted');

    // RUNNING means the worker fetched the bundle from S3 too and started its tasks.
    await waitFor(async () => (await client.getJob('customer-experience')).state === 'RUNNING', { timeoutMs: 30_000, what: 'customer-experience to be RUNNING' });
    assert.deepEqual(await readdir(cluster.storeDir), [], 'nothing went to the local directory store');
    for (const process of [cluster.coordinator, ...cluster.workers]) assert.doesNotMatch(process.output(), /NodeVersionSupportWarning/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

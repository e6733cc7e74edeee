// The ObjectStore contract, specified once and run against every store: FileObjectStore on a temp
// dir and S3ObjectStore on a real S3 endpoint (s3rver from the test kit).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InvalidArgumentError, NotFoundError, RetryableError } from '../../core/errors.ts';
import { FileObjectStore, openObjectStore, type ObjectStore } from '../../core/object-store.ts';
import { S3ObjectStore, S3_RETRY_AFTER_MS } from '../../core/s3-object-store.ts';
import { startS3Server, type S3Server } from '../kit/index.ts';

function same(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  // Buffer.equals compares in native code: fast for 8 MiB, and a failure does not print it all.
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  assert.ok(a.equals(e), `${message ?? 'bytes differ'}: got ${a.byteLength} bytes, expected ${e.byteLength}`);
}

/** Rejects with NotFoundError whose message names the key. */
async function rejectsNotFound(promise: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof NotFoundError, `expected NotFoundError, got ${String(e)}`);
    assert.match(e.message, new RegExp(key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    return true;
  });
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

interface Case {
  name: string;
  /** `p` is a key prefix of the test's own, so cases share one store without seeing each other. */
  run(store: ObjectStore, p: string): Promise<void>;
}

const cases: Case[] = [
  {
    name: 'put then get returns the same bytes, including 0 bytes and 8 MiB of random data',
    async run(store, p) {
      const sizes = [0, 1, 1000, 8 * 1024 * 1024];
      for (const size of sizes) {
        const bytes = randomBytes(size);
        await store.put(`${p}obj-${size}`, bytes);
        same(await store.get(`${p}obj-${size}`), bytes, `${size} bytes`);
      }
    },
  },
  {
    name: 'put of a view into a larger buffer stores only the view',
    async run(store, p) {
      const backing = randomBytes(4096);
      const view = backing.subarray(1000, 1100);
      await store.put(`${p}view`, view);
      same(await store.get(`${p}view`), view);
      assert.equal(await store.size(`${p}view`), 100);
    },
  },
  {
    name: 'put overwrites an existing object',
    async run(store, p) {
      await store.put(`${p}k`, randomBytes(5000));
      const second = randomBytes(10);
      await store.put(`${p}k`, second);
      same(await store.get(`${p}k`), second);
      assert.equal(await store.size(`${p}k`), 10);
    },
  },
  {
    name: 'getRange returns exactly the bytes asked for: first, middle, last, whole, empty',
    async run(store, p) {
      const bytes = randomBytes(1024);
      const key = `${p}delta`;
      await store.put(key, bytes);
      same(await store.getRange(key, 0, 1), bytes.subarray(0, 1), 'first byte');
      same(await store.getRange(key, 300, 700), bytes.subarray(300, 700), 'middle');
      same(await store.getRange(key, 1023, 1024), bytes.subarray(1023, 1024), 'last byte');
      same(await store.getRange(key, 0, 1024), bytes, 'whole object');
      assert.equal((await store.getRange(key, 512, 512)).byteLength, 0, 'an empty range');
      assert.equal((await store.getRange(key, 1024, 1024)).byteLength, 0, 'an empty range at the end');
    },
  },
  {
    name: 'getRange past the end or backwards is InvalidArgumentError; of a missing key, NotFoundError',
    async run(store, p) {
      const key = `${p}short`;
      await store.put(key, randomBytes(100));
      await assert.rejects(store.getRange(key, 50, 101), InvalidArgumentError, 'ends one byte past the end');
      await assert.rejects(store.getRange(key, 100, 101), InvalidArgumentError, 'starts at the end');
      await assert.rejects(store.getRange(key, 200, 300), InvalidArgumentError, 'starts past the end');
      await assert.rejects(store.getRange(key, 101, 101), InvalidArgumentError, 'an empty range past the end');
      await assert.rejects(store.getRange(key, 10, 5), InvalidArgumentError, 'backwards');
      await assert.rejects(store.getRange(key, -1, 5), InvalidArgumentError, 'negative');
      await rejectsNotFound(store.getRange(`${p}missing`, 0, 1), `${p}missing`);
      await rejectsNotFound(store.getRange(`${p}missing`, 0, 0), `${p}missing`);
    },
  },
  {
    name: 'size is the byte length; of a missing key, NotFoundError naming it',
    async run(store, p) {
      await store.put(`${p}empty`, new Uint8Array(0));
      await store.put(`${p}some`, randomBytes(12345));
      assert.equal(await store.size(`${p}empty`), 0);
      assert.equal(await store.size(`${p}some`), 12345);
      await rejectsNotFound(store.size(`${p}missing`), `${p}missing`);
    },
  },
  {
    name: 'exists follows put and delete',
    async run(store, p) {
      const key = `${p}a/b/c.snap`;
      assert.equal(await store.exists(key), false);
      await store.put(key, randomBytes(3));
      assert.equal(await store.exists(key), true);
      await store.delete(key);
      assert.equal(await store.exists(key), false);
    },
  },
  {
    name: 'delete is idempotent and leaves other objects alone',
    async run(store, p) {
      await store.put(`${p}keep`, randomBytes(3));
      await store.put(`${p}drop`, randomBytes(3));
      await store.delete(`${p}drop`);
      await store.delete(`${p}drop`);
      await store.delete(`${p}never-existed`);
      await rejectsNotFound(store.get(`${p}drop`), `${p}drop`);
      assert.equal(await store.exists(`${p}keep`), true);
    },
  },
  {
    name: 'get of a missing key is NotFoundError naming the key and the store',
    async run(store, p) {
      const key = `${p}jobs/j1/checkpoints/7/_metadata`;
      await rejectsNotFound(store.get(key), key);
      await assert.rejects(store.get(key), (e: Error) => e.message.includes(store.url));
    },
  },
  {
    name: 'list returns the sorted keys under a prefix, relative to the store, across pages (1,200 objects)',
    async run(store, p) {
      const keys = Array.from({ length: 1200 }, (_, i) => `${p}many/${String(i).padStart(4, '0')}-${i % 7}.delta`);
      // Neighbours outside `many/`, before and after it. (Not `many-x/`: see the next case.)
      const others = [`${p}man`, `${p}many2/x`, `${p}other/y`];
      // Put in a shuffled order, so that sorted output is the store's doing.
      const shuffled = [...keys, ...others].sort(() => Math.random() - 0.5);
      await pool(shuffled, 16, (key) => store.put(key, new Uint8Array([key.length & 0xff])));
      const listed = await store.list(`${p}many/`);
      assert.equal(listed.length, 1200);
      assert.deepEqual(listed, [...keys].sort());
      const all = await store.list(p);
      assert.deepEqual(all, [...keys, ...others].sort());
    },
  },
  {
    // Kept under one page: s3rver pages in directory-walk order, so a paginated listing that
    // spans `a/` and `a-b/` (where 'a-b/…' < 'a/…' as keys) skips keys there; S3 does not.
    name: 'list takes the prefix as a string prefix, not a directory, and an unknown prefix lists nothing',
    async run(store, p) {
      const keys = [`${p}state/s-1/w-1.delta`, `${p}state/s/w-1.delta`, `${p}state/s/w-2.delta`, `${p}state/s.snap`, `${p}stat`];
      for (const key of keys) await store.put(key, new Uint8Array(1));
      assert.deepEqual(await store.list(`${p}state/s`), keys.slice(0, 4).sort());
      assert.deepEqual(await store.list(`${p}state/s/`), [`${p}state/s/w-1.delta`, `${p}state/s/w-2.delta`]);
      assert.deepEqual(await store.list(`${p}stat`), [...keys].sort());
      assert.deepEqual(await store.list(`${p}nothing-here/`), []);
      assert.deepEqual(await store.list(`${p}state/s/w-1.delta/`), []);
    },
  },
  {
    name: 'a key that is not a relative path is InvalidArgumentError',
    async run(store, p) {
      for (const key of ['', `${p}../../escape`]) {
        await assert.rejects(store.put(key, new Uint8Array(1)), InvalidArgumentError, JSON.stringify(key));
      }
    },
  },
];

/** Each backend: how to open a fresh, empty store and how to clean it up. */
interface Backend {
  name: string;
  open(): Promise<{ store: ObjectStore; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'FileObjectStore',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'eddy-store-'));
      return { store: new FileObjectStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'S3ObjectStore',
    async open() {
      const s3 = await startS3Server();
      const store = openObjectStore(`s3://${s3.bucket}/eddy/tests`, { endpoint: s3.endpoint, credentials: s3.credentials });
      assert.ok(store instanceof S3ObjectStore);
      return {
        store,
        cleanup: async () => {
          store.close();
          await s3[Symbol.asyncDispose]();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`object store (${backend.name})`, () => {
    let store: ObjectStore;
    let cleanup: (() => Promise<void>) | undefined;
    before(async () => {
      ({ store, cleanup } = await backend.open());
    });
    after(() => cleanup?.());
    cases.forEach((c, i) => test(`object store - ${c.name}`, () => c.run(store, `case-${i}/`)));
  });
}

describe('object store (S3ObjectStore only)', () => {
  let s3: S3Server;
  before(async () => {
    s3 = await startS3Server();
  });
  after(() => s3?.[Symbol.asyncDispose]());

  test('s3 store - openObjectStore parses s3://bucket/prefix, and keys live under the prefix', async () => {
    const options = { endpoint: s3.endpoint, credentials: s3.credentials };
    using nested = openObjectStore(`s3://${s3.bucket}/a/b/`, options) as S3ObjectStore;
    using root = openObjectStore(`s3://${s3.bucket}`, options) as S3ObjectStore;
    assert.equal(nested.url, `s3://${s3.bucket}/a/b`);
    assert.equal(root.url, `s3://${s3.bucket}`);
    const bytes = randomBytes(10);
    await nested.put('jobs/j/x', bytes);
    same(await root.get('a/b/jobs/j/x'), bytes);
    assert.deepEqual(await nested.list(''), ['jobs/j/x']);
    assert.deepEqual(await root.list('a/'), ['a/b/jobs/j/x']);
    assert.throws(() => openObjectStore('s3://user:pw@bucket/x', options), InvalidArgumentError);
    assert.throws(() => openObjectStore('s3://Not_A_Bucket/x', options), InvalidArgumentError);
    assert.throws(() => openObjectStore('gs://bucket/x'), InvalidArgumentError);
  });

  test('s3 store - a missing bucket is NotFoundError naming the bucket', async () => {
    using store = new S3ObjectStore({ bucket: 'no-such-bucket', endpoint: s3.endpoint, credentials: s3.credentials });
    await assert.rejects(store.put('k', new Uint8Array(1)), (e: unknown) => e instanceof NotFoundError && e.message.includes('no-such-bucket'));
  });

  test('s3 store - a hung server (SIGSTOP) makes a put reject with RetryableError once the request time-out passes', async () => {
    // The kernel still accepts connections for a stopped process, so only the request time-out
    // (with throwOnRequestTimeout; without it the SDK just logs and waits) ends the put.
    using store = new S3ObjectStore({ bucket: s3.bucket, prefix: 'hung', endpoint: s3.endpoint, credentials: s3.credentials, requestTimeoutMs: 300 });
    await store.put('warm', randomBytes(10));
    s3.kill('SIGSTOP');
    try {
      const startedAt = Date.now();
      await assert.rejects(store.put('k', randomBytes(10)), (e: unknown) => e instanceof RetryableError && /TimeoutError/.test(e.message));
      const elapsedMs = Date.now() - startedAt;
      assert.ok(elapsedMs >= 300 && elapsedMs < 5_000, `the put failed after ${elapsedMs}ms (3 attempts of 300ms each expected)`);
    } finally {
      s3.kill('SIGCONT');
    }
    await store.put('k', randomBytes(10));
  });

  test('s3 store - with the server down, operations reject with RetryableError in bounded time; after a restart they work again', async () => {
    using store = new S3ObjectStore({ bucket: s3.bucket, prefix: 'outage', endpoint: s3.endpoint, credentials: s3.credentials });
    const before = randomBytes(100);
    await store.put('before', before);

    await s3.stop();
    const isRetryable = (e: unknown): boolean => {
      assert.ok(e instanceof RetryableError, `expected RetryableError, got ${String(e)}`);
      assert.equal(e.retryAfterMs, S3_RETRY_AFTER_MS);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    };
    for (const [what, operation] of [
      ['put', () => store.put('during', randomBytes(100))],
      ['get', () => store.get('before')],
      ['exists', () => store.exists('before')],
      ['list', () => store.list('')],
    ] as const) {
      const startedAt = Date.now();
      await assert.rejects(operation(), isRetryable, what);
      const elapsedMs = Date.now() - startedAt;
      // Three attempts with the SDK's backoff: well under a second against a refused port.
      assert.ok(elapsedMs < 5_000, `${what} took ${elapsedMs}ms to fail`);
    }

    await s3.restart();
    const after = randomBytes(100);
    await store.put('after', after);
    same(await store.get('after'), after);
    same(await store.get('before'), before, 'objects put before the outage survive it');
    assert.deepEqual(await store.list(''), ['after', 'before']);
  });
});

// S3, or an S3-compatible endpoint (MinIO; s3rver in tests), as Eddy's object store
// (docs/ARCHITECTURE.md, "Checkpoints"). Keys are '/'-separated paths under the store's prefix.
//
// This file implements the ObjectStore contract of object-store.ts without importing it:
// object-store.ts imports this file (openObjectStore), and an import back, even of a type, is
// a cycle for `npm run cycles`. openObjectStore returns an S3ObjectStore as an ObjectStore, so
// the compiler still checks the contract there.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { EddyError, InvalidArgumentError, NotFoundError, RetryableError, TerminalError, ensureError } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';
import { createReadStream } from 'node:fs';

/** How long callers wait before retrying an operation that failed on the network or a 5xx. */
export const S3_RETRY_AFTER_MS = 1_000;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** How to reach S3: everything but where the store lives (that is the s3:// URL). */
export interface S3ConnectionOptions {
  /**
   * An S3-compatible endpoint, e.g. http://127.0.0.1:9000 (MinIO). cli/ fills it from
   * --s3-endpoint / EDDY_S3_ENDPOINT.
   * @default AWS's endpoint for `region`
   */
  endpoint?: string;
  /** @default 'us-east-1' */
  region?: string;
  /**
   * Path-style addressing (http://host/bucket/key) instead of virtual-hosted (bucket.host).
   * @default true when `endpoint` is set, else false
   */
  forcePathStyle?: boolean;
  /** @default the AWS SDK's default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, SSO, IMDS */
  credentials?: S3Credentials;
  /** Attempts per request, the first included, before an error reaches the caller. @default 3 */
  maxAttempts?: number;
  /** Time to establish a TCP connection, in ms. @default 2000 */
  connectionTimeoutMs?: number;
  /**
   * Time from sending a request until the response headers arrive, in ms. It includes uploading
   * the body, so it bounds how large an object a slow link can put.
   * @default 30000
   */
  requestTimeoutMs?: number;
  /** Time a socket may stay idle (e.g. mid-way through reading a response body), in ms. @default 10000 */
  socketTimeoutMs?: number;
  /** Receives the HTTP handler's warnings (e.g. all sockets busy). @default silentLogger */
  logger?: Logger;
}

export interface S3ObjectStoreOptions extends S3ConnectionOptions {
  bucket: string;
  /** Key prefix the store lives under, without leading or trailing '/'. @default '' (the bucket's root) */
  prefix?: string;
}

export interface CompiledS3ObjectStoreOptions {
  bucket: string;
  /** '' or a prefix without leading or trailing '/'. */
  prefix: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  credentials: S3Credentials | undefined;
  maxAttempts: number;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  socketTimeoutMs: number;
  logger: Logger;
}

export const DEFAULT_S3_REGION = 'us-east-1';
export const DEFAULT_S3_MAX_ATTEMPTS = 3;
export const DEFAULT_S3_CONNECTION_TIMEOUT_MS = 2_000;
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_S3_SOCKET_TIMEOUT_MS = 10_000;

export function compileS3ObjectStoreOptions(options: S3ObjectStoreOptions): CompiledS3ObjectStoreOptions {
  const { bucket } = options;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new InvalidArgumentError(`S3 bucket name ${JSON.stringify(bucket)} is not valid`);
  const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix !== '') checkKey(prefix, 'S3 prefix');
  let endpoint: string | undefined;
  if (options.endpoint !== undefined && options.endpoint !== '') {
    let parsed: URL;
    try {
      parsed = new URL(options.endpoint);
    } catch (e) {
      throw new InvalidArgumentError(`S3 endpoint ${options.endpoint} is not a URL`, { cause: e });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidArgumentError(`S3 endpoint ${options.endpoint} must be http:// or https://`);
    endpoint = options.endpoint;
  }
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`S3 option ${name} must be a positive integer, got ${v}`);
    return v;
  };
  return {
    bucket,
    prefix,
    endpoint,
    region: options.region ?? DEFAULT_S3_REGION,
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    credentials: options.credentials,
    maxAttempts: positive('maxAttempts', options.maxAttempts, DEFAULT_S3_MAX_ATTEMPTS),
    connectionTimeoutMs: positive('connectionTimeoutMs', options.connectionTimeoutMs, DEFAULT_S3_CONNECTION_TIMEOUT_MS),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_S3_REQUEST_TIMEOUT_MS),
    socketTimeoutMs: positive('socketTimeoutMs', options.socketTimeoutMs, DEFAULT_S3_SOCKET_TIMEOUT_MS),
    logger: options.logger ?? silentLogger,
  };
}

/** s3://bucket/some/prefix → { bucket: 'bucket', prefix: 'some/prefix' }; s3://bucket → prefix ''. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (e) {
    throw new InvalidArgumentError(`object store URL ${url} is not a URL`, { cause: e });
  }
  if (parsed.protocol !== 's3:') throw new InvalidArgumentError(`object store URL ${url} is not an s3:// URL`);
  if (parsed.username !== '' || parsed.password !== '' || parsed.port !== '' || parsed.search !== '' || parsed.hash !== '') {
    throw new InvalidArgumentError(`object store URL ${url}: expected s3://bucket/prefix, without credentials, port, query or fragment (the endpoint is an option)`);
  }
  return { bucket: parsed.hostname, prefix: decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '') };
}

/** Network failures and time-outs: the request may succeed later. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
/** Error names (S3 error codes, the HTTP handler's time-outs) that mean "later", whatever the status. */
const RETRYABLE_ERROR_NAMES = new Set(['SlowDown', 'RequestTimeout', 'ServiceUnavailable', 'InternalError', 'ThrottlingException', 'TimeoutError']);

/** The AWS SDK's error shape: the S3 error code as `name`, the HTTP status in `$metadata`. */
interface SdkError extends Error {
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  errors?: unknown[];
}

function isRetryable(e: SdkError, depth = 0): boolean {
  if (depth > 3) return false;
  if (RETRYABLE_ERROR_NAMES.has(e.name) || (e.code !== undefined && NETWORK_ERROR_CODES.has(e.code)) || e.$retryable !== undefined) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  // Node 20 reports a failed happy-eyeballs connect as an AggregateError of per-address errors.
  const nested = [...(Array.isArray(e.errors) ? e.errors : []), e.cause].filter((x): x is SdkError => x instanceof Error);
  return nested.some((x) => isRetryable(x, depth + 1));
}

export class S3ObjectStore {
  /** s3://bucket or s3://bucket/prefix */
  readonly url: string;
  readonly #o: CompiledS3ObjectStoreOptions;
  readonly #client: S3Client;
  /** '' or the prefix followed by '/'. */
  readonly #keyPrefix: string;

  constructor(options: S3ObjectStoreOptions) {
    const o = (this.#o = compileS3ObjectStoreOptions(options));
    this.url = o.prefix === '' ? `s3://${o.bucket}` : `s3://${o.bucket}/${o.prefix}`;
    this.#keyPrefix = o.prefix === '' ? '' : `${o.prefix}/`;
    const logger = o.logger.child({ store: this.url });
    const warn = (...content: unknown[]): void => logger.warn({ detail: content.map(String).join(' ') }, 's3 http handler warning');
    this.#client = new S3Client({
      region: o.region,
      ...(o.endpoint !== undefined && { endpoint: o.endpoint }),
      forcePathStyle: o.forcePathStyle,
      ...(o.credentials !== undefined && { credentials: o.credentials }),
      maxAttempts: o.maxAttempts,
      // With the SDK's default (WHEN_SUPPORTED) the client adds a CRC32 to every PutObject, and
      // for a streamed body it does so with aws-chunked encoding; an S3-compatible server that
      // does not decode it (s3rver, older MinIO) stores the chunk framing inside the object:
      // silent corruption. Eddy checksums every section it writes (docs/ARCHITECTURE.md), so only
      // send or validate checksums where an operation requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: o.connectionTimeoutMs,
        requestTimeout: o.requestTimeoutMs,
        // Without it a request past requestTimeout only logs a warning and keeps waiting.
        throwOnRequestTimeout: true,
        socketTimeout: o.socketTimeoutMs,
        logger: { debug: () => {}, info: () => {}, warn, error: warn },
      },
    });
  }

  /** Writes the whole object (one PutObject: S3 allows 5 GB; Eddy's objects are tens of MB). */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    const Key = this.#key(key);
    await this.#send('put', key, () => this.#client.send(new PutObjectCommand({ Bucket: this.#o.bucket, Key, Body: bytes, ContentLength: bytes.byteLength })));
  }

  /** Writes the whole object from a file, streamed (a new read stream per attempt). */
  async putFile(key: string, file: string, bytes: number): Promise<void> {
    const Key = this.#key(key);
    await this.#send('put', key, () => this.#client.send(new PutObjectCommand({ Bucket: this.#o.bucket, Key, Body: createReadStream(file), ContentLength: bytes })));
  }

  async get(key: string): Promise<Uint8Array> {
    const Key = this.#key(key);
    return this.#send('get', key, async () => {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key }));
      const bytes = await this.#body(response.Body, key);
      if (response.ContentLength !== undefined && bytes.byteLength !== response.ContentLength) {
        throw new RetryableError(`object ${key} in ${this.url}: read ${bytes.byteLength} of ${response.ContentLength} bytes`, S3_RETRY_AFTER_MS);
      }
      return bytes;
    });
  }

  /** Bytes [start, endExclusive) of the object; the range must lie within it. */
  async getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array> {
    const Key = this.#key(key);
    checkRange(key, start, endExclusive);
    if (start === endExclusive) {
      // An empty range has no Range header form (S3 would ignore "bytes=5-4" and send it all).
      const size = await this.size(key);
      if (start > size) throw rangeError(key, this.url, start, endExclusive, size);
      return new Uint8Array(0);
    }
    const length = endExclusive - start;
    return this.#send('getRange', key, async () => {
      let response;
      try {
        response = await this.#client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key, Range: `bytes=${start}-${endExclusive - 1}` }));
      } catch (e) {
        // 416: the range starts at or past the end of the object.
        if (ensureError(e).name === 'InvalidRange') throw rangeError(key, this.url, start, endExclusive, undefined, e);
        throw e;
      }
      const body = await this.#body(response.Body, key);
      // Where the body starts in the object: a 206 says so in Content-Range. HTTP lets a server
      // ignore Range and send the whole object (200, no Content-Range), and s3rver sends from
      // `start` to the end for a range that ends at byte 0: take what was asked for out of it.
      const served = parseContentRange(response.ContentRange) ?? { start: 0, size: undefined };
      const from = start - served.start;
      if (from < 0) throw new EddyError('INTERNAL', `S3 getRange of ${key} in ${this.url}: asked for bytes from ${start}, got ${response.ContentRange}`);
      // S3 answers a range that ends past the object with what there is; the caller asked for more.
      if (body.byteLength - from < length) throw rangeError(key, this.url, start, endExclusive, served.size ?? served.start + body.byteLength);
      return from === 0 && body.byteLength === length ? body : body.slice(from, from + length);
    });
  }

  /** The object's size in bytes; NotFoundError naming the key when it does not exist. */
  async size(key: string): Promise<number> {
    const Key = this.#key(key);
    const response = await this.#send('size', key, () => this.#client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key })));
    if (response.ContentLength === undefined) throw new EddyError('INTERNAL', `S3 HeadObject of ${key} in ${this.url} returned no Content-Length`);
    return response.ContentLength;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.size(key);
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }

  /** Idempotent: deleting a missing object succeeds. */
  async delete(key: string): Promise<void> {
    const Key = this.#key(key);
    await this.#send('delete', key, () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key })));
  }

  /** Keys under a prefix (relative to the store's prefix), sorted; follows every page. */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.#send('list', `keys under ${JSON.stringify(prefix)}`, () =>
        this.#client.send(new ListObjectsV2Command({ Bucket: this.#o.bucket, Prefix: this.#keyPrefix + prefix, ...(ContinuationToken !== undefined && { ContinuationToken }) })),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) keys.push(object.Key.slice(this.#keyPrefix.length));
      }
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      if (page.IsTruncated === true && ContinuationToken === undefined) {
        throw new EddyError('INTERNAL', `S3 ListObjectsV2 of ${prefix} in ${this.url} was truncated without a continuation token`);
      }
    } while (ContinuationToken !== undefined);
    // S3 orders by UTF-8 bytes, JavaScript by UTF-16 units; sort so both stores agree.
    return keys.sort();
  }

  /** Closes the client's idle connections. The store is unusable afterwards. */
  close(): void {
    this.#client.destroy();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #key(key: string): string {
    checkKey(key, 'object key');
    return this.#keyPrefix + key;
  }

  async #body(body: { transformToByteArray(): Promise<Uint8Array> } | undefined, key: string): Promise<Uint8Array> {
    if (body === undefined) throw new EddyError('INTERNAL', `S3 GetObject of ${key} in ${this.url} returned no body`);
    return body.transformToByteArray();
  }

  /** Runs one S3 operation, turning what the SDK throws into an error that says what to do next. */
  async #send<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (raw) {
      if (raw instanceof EddyError) throw raw;
      const e = ensureError(raw) as SdkError;
      const status = e.$metadata?.httpStatusCode;
      const what = `S3 ${operation} of ${key} in ${this.url}`;
      if (e.name === 'NoSuchBucket') throw new NotFoundError(`${what}: bucket ${this.#o.bucket} does not exist`, { cause: e });
      if (e.name === 'NoSuchKey' || e.name === 'NotFound' || status === 404) throw new NotFoundError(`object ${key} not found in ${this.url}`, { cause: e });
      if (isRetryable(e)) throw new RetryableError(`${what} failed: ${e.name}${e.code !== undefined ? ` ${e.code}` : ''}: ${e.message}`, S3_RETRY_AFTER_MS, { cause: e });
      const code = status !== undefined && status >= 400 && status < 500 ? 'FAILED_PRECONDITION' : 'INTERNAL';
      throw new TerminalError(code, `${what} failed${status !== undefined ? ` (HTTP ${status})` : ''}: ${e.name}: ${e.message}`, { cause: e });
    }
  }
}

/** Keys are relative '/'-separated paths: no empty, '.' or '..' segments (as on a file system). */
function checkKey(key: string, what: string): void {
  if (key === '' || key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(key)} is not a relative '/'-separated path`);
  }
}

/** "bytes 100-199/1024" → { start: 100, size: 1024 }; undefined when absent or not that form. */
function parseContentRange(header: string | undefined): { start: number; size: number | undefined } | undefined {
  const match = header === undefined ? null : /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header);
  if (match === null) return undefined;
  return { start: Number(match[1]), size: match[2] === '*' ? undefined : Number(match[2]) };
}

// Shared with FileObjectStore (object-store.ts imports this file, not the other way round).

/** InvalidArgumentError unless 0 <= start <= endExclusive (integers). */
export function checkRange(key: string, start: number, endExclusive: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endExclusive) || start < 0 || endExclusive < start) {
    throw new InvalidArgumentError(`range [${start}, ${endExclusive}) of object ${key} is not a valid byte range`);
  }
}

export function rangeError(key: string, url: string, start: number, endExclusive: number, size: number | undefined, cause?: unknown): InvalidArgumentError {
  const known = size === undefined ? '' : ` (the object has ${size} bytes)`;
  return new InvalidArgumentError(`range [${start}, ${endExclusive}) of object ${key} in ${url} is past its end${known}`, cause === undefined ? undefined : { cause });
}

// Bundle uploads (SubmitJob) streamed to a temporary file, never held whole in memory (issue 12):
// each chunk is hashed (sha256) and appended as it arrives, the gRPC stream paused while the write
// is pending (flow control back to the client), the size checked against the cap as it grows, and
// only so many uploads run at once. The job manager then copies the file into the object store
// (core/object-store.ts putFile) and the file is removed, whatever the outcome.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, RetryableError } from '../core/errors.ts';
import { putFile, type ObjectStore } from '../core/object-store.ts';

/** A bundle the job manager can check and store: bytes in memory, or an upload staged in a file. */
export interface StagedBundle {
  /** Hex sha256 of the bytes. */
  readonly sha256: string;
  readonly bytes: number;
  /** Writes the bundle to the store under `key`. */
  storeAt(store: ObjectStore, key: string): Promise<void>;
}

/** A bundle already in memory (tests, callers other than gRPC). */
export function bundleFromBytes(bytes: Uint8Array): StagedBundle {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { sha256, bytes: bytes.length, storeAt: (store, key) => store.put(key, bytes) };
}

export interface BundleUploadsOptions {
  /** Largest bundle accepted, in bytes. */
  maxBytes: number;
  /** Uploads in progress at once; one more is refused UNAVAILABLE (retry later). @default 2 */
  maxConcurrent?: number;
  /** Where uploads are staged. @default a directory under the OS temp dir */
  dir?: string;
}

export class BundleUploads {
  readonly #maxBytes: number;
  readonly #maxConcurrent: number;
  readonly #dir: string | undefined;
  #made: Promise<string> | undefined;
  #active = 0;

  constructor(options: BundleUploadsOptions) {
    this.#maxBytes = options.maxBytes;
    this.#maxConcurrent = options.maxConcurrent ?? 2;
    this.#dir = options.dir;
  }

  get active(): number {
    return this.#active;
  }

  /** Starts an upload of `declaredBytes` (0: not declared); refused over the cap or past the concurrency bound. */
  async begin(declaredBytes: number): Promise<BundleUpload> {
    if (declaredBytes > this.#maxBytes) throw new InvalidArgumentError(`bundle of ${declaredBytes} bytes refused: the largest accepted is ${this.#maxBytes} bytes`);
    if (this.#active >= this.#maxConcurrent) throw new RetryableError(`${this.#active} bundle uploads are in progress (at most ${this.#maxConcurrent}); try again shortly`, 1000);
    this.#active++;
    try {
      this.#made ??= this.#dir !== undefined ? fs.mkdir(this.#dir, { recursive: true }).then(() => this.#dir!) : fs.mkdtemp(path.join(os.tmpdir(), 'eddy-uploads-'));
      const dir = await this.#made;
      const file = path.join(dir, `bundle-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.js`);
      const handle = await fs.open(file, 'wx', 0o600);
      return new BundleUpload(file, handle, this.#maxBytes, () => this.#active--);
    } catch (e) {
      this.#active--;
      throw e;
    }
  }
}

export class BundleUpload implements StagedBundle {
  readonly #file: string;
  readonly #handle: fs.FileHandle;
  readonly #maxBytes: number;
  readonly #release: () => void;
  readonly #hash: Hash = createHash('sha256');
  #bytes = 0;
  #sha256: string | undefined;
  #closed = false;

  constructor(file: string, handle: fs.FileHandle, maxBytes: number, release: () => void) {
    this.#file = file;
    this.#handle = handle;
    this.#maxBytes = maxBytes;
    this.#release = release;
  }

  /** Appends a chunk; the caller waits for it before the next (one write at a time). */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#bytes + chunk.length > this.#maxBytes) throw new InvalidArgumentError(`bundle larger than ${this.#maxBytes} bytes refused (more than ${this.#bytes + chunk.length} bytes arrived)`);
    this.#bytes += chunk.length;
    this.#hash.update(chunk);
    await this.#handle.write(chunk);
  }

  /** Every chunk arrived: the digest is final. */
  async finish(): Promise<void> {
    this.#sha256 = this.#hash.digest('hex');
    await this.#close();
  }

  get sha256(): string {
    if (this.#sha256 === undefined) throw new Error('bundle upload not finished');
    return this.#sha256;
  }

  get bytes(): number {
    return this.#bytes;
  }

  storeAt(store: ObjectStore, key: string): Promise<void> {
    return putFile(store, key, this.#file, this.#bytes);
  }

  /** Removes the staged file and frees the upload's slot (idempotent). */
  async discard(): Promise<void> {
    await this.#close();
    await fs.rm(this.#file, { force: true });
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    await this.#handle.close();
  }
}

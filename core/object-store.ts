// Where bundles (and, with checkpoints, state) are kept: S3 or file:// (docs/ARCHITECTURE.md,
// "Checkpoints"). Keys are '/'-separated paths relative to the store's root.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError, NotFoundError } from './errors.ts';
import { S3ObjectStore, checkRange, parseS3Url, rangeError, type S3ConnectionOptions } from './s3-object-store.ts';

export interface ObjectStore {
  /** The store's URL, e.g. file:///var/eddy or s3://bucket/prefix. */
  readonly url: string;
  /** Writes the whole object; readers never see a partial one. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Throws NotFoundError naming the key when it does not exist. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Bytes [start, endExclusive) of an object: restoring one key group from a checkpoint delta
   * reads just its section. Throws NotFoundError naming the key when it does not exist, and
   * InvalidArgumentError unless 0 <= start <= endExclusive <= size (a range past the end means
   * a corrupt index: fail loudly rather than return fewer bytes).
   */
  getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array>;
  /** The object's size in bytes; NotFoundError naming the key when it does not exist. */
  size(key: string): Promise<number>;
  exists(key: string): Promise<boolean>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
}

/**
 * Writes an object from a file of `bytes` bytes without holding it in memory (a bundle upload,
 * coordinator/bundle-upload.ts); a store of another kind reads the file whole.
 */
export async function putFile(store: ObjectStore, key: string, file: string, bytes: number): Promise<void> {
  if (store instanceof FileObjectStore) return store.putFile(key, file);
  if (store instanceof S3ObjectStore) return store.putFile(key, file, bytes);
  return store.put(key, await fs.readFile(file));
}

/** How to reach the store's service; file:// stores ignore it. */
export type OpenObjectStoreOptions = S3ConnectionOptions;

/**
 * Opens a store from a URL: s3://bucket or s3://bucket/prefix (endpoint, region and credentials
 * come from `options`), file:///abs/path, or a plain path (taken as a directory).
 */
export function openObjectStore(url: string, options: OpenObjectStoreOptions = {}): ObjectStore {
  if (url.startsWith('s3://')) return new S3ObjectStore({ ...options, ...parseS3Url(url) });
  if (url.startsWith('file://')) return new FileObjectStore(fileURLToPath(url));
  if (/^[a-z0-9+.-]+:\/\//i.test(url)) throw new InvalidArgumentError(`object store URL ${url}: expected s3://bucket/prefix, file:///path or a directory`);
  return new FileObjectStore(path.resolve(url));
}

export class FileObjectStore implements ObjectStore {
  readonly url: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = path.resolve(root);
    this.url = pathToFileURL(this.#root).href;
  }

  #path(key: string): string {
    const p = path.resolve(this.#root, key);
    if (!p.startsWith(this.#root + path.sep)) throw new InvalidArgumentError(`object key ${key} escapes the store root`);
    return p;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const p = this.#path(key);
    await fs.mkdir(path.dirname(p), { recursive: true });
    // Write then rename: a reader sees the old object or the whole new one.
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, p);
  }

  /** Writes the whole object from a file (copied, then renamed into place). */
  async putFile(key: string, file: string): Promise<void> {
    const p = this.#path(key);
    await fs.mkdir(path.dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    await fs.copyFile(file, tmp);
    await fs.rename(tmp, p);
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return await fs.readFile(this.#path(key));
    } catch (e) {
      throw this.#notFound(key, e);
    }
  }

  async getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array> {
    const p = this.#path(key);
    checkRange(key, start, endExclusive);
    let file: fs.FileHandle;
    try {
      file = await fs.open(p, 'r');
    } catch (e) {
      throw this.#notFound(key, e);
    }
    try {
      const { size } = await file.stat();
      if (endExclusive > size) throw rangeError(key, this.url, start, endExclusive, size);
      const bytes = new Uint8Array(endExclusive - start);
      // read() may return fewer bytes than asked for; loop until the range is full.
      for (let filled = 0; filled < bytes.byteLength; ) {
        const { bytesRead } = await file.read(bytes, filled, bytes.byteLength - filled, start + filled);
        if (bytesRead === 0) throw rangeError(key, this.url, start, endExclusive, start + filled);
        filled += bytesRead;
      }
      return bytes;
    } finally {
      await file.close();
    }
  }

  async size(key: string): Promise<number> {
    try {
      return (await fs.stat(this.#path(key))).size;
    } catch (e) {
      throw this.#notFound(key, e);
    }
  }

  /** NotFoundError naming the key for ENOENT; anything else as it is. */
  #notFound(key: string, e: unknown): unknown {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? new NotFoundError(`object ${key} not found in ${this.url}`, { cause: e }) : e;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fs.access(this.#path(key));
      return true;
    } catch {
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.#path(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      for (const ent of entries) {
        const full = path.join(dir, ent.name);
        if (ent.isDirectory()) await walk(full);
        else if (!ent.name.endsWith('.tmp')) out.push(path.relative(this.#root, full).split(path.sep).join('/'));
      }
    };
    await walk(this.#root);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }
}


// The key that signs a job's record batches (worker/channel/batch-signing.ts), and how it reaches
// the workers without being readable by anybody else who can subscribe to control subjects.
//
// Workers share one set of NATS credentials unless per-worker users are configured (README,
// "Security"), and the worker role may subscribe to every worker's control subjects: a key sent
// in clear in DeployTasks could be read by any holder of the worker credentials, who could then
// sign forged batches. So each worker makes an X25519 key pair when it starts and registers its
// public key; the coordinator seals the channel key to each worker it deploys to (ephemeral-static
// ECDH, HKDF-SHA256, AES-256-GCM bound to the job, epoch and worker). Only the worker process that
// registered the public key can open it. A fresh channel key is drawn for every epoch of a job:
// batches of an earlier epoch do not verify, and nothing secret is kept in the job store.
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

/** Bytes of a channel key (HMAC-SHA256 key). */
export const CHANNEL_KEY_BYTES = 32;
/** Bytes of a raw X25519 public key. */
export const PUBLIC_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** A sealed key: ephemeral public key | nonce | GCM tag | ciphertext. */
export const SEALED_KEY_BYTES = PUBLIC_KEY_BYTES + NONCE_BYTES + TAG_BYTES + CHANNEL_KEY_BYTES;

export function newChannelKey(): Uint8Array {
  return new Uint8Array(randomBytes(CHANNEL_KEY_BYTES));
}

/** A worker's key pair for opening sealed channel keys; the private half never leaves its process. */
export class SealingKeyPair {
  readonly #privateKey: KeyObject;
  /** The raw public key, sent in Register. */
  readonly publicKey: Uint8Array;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    this.#privateKey = privateKey;
    this.publicKey = rawPublicKey(publicKey);
  }

  /** Opens a key sealed to this pair for (jobId, epoch, workerId); throws when it was not. */
  open(sealed: Uint8Array, context: SealContext): Uint8Array {
    if (sealed.length !== SEALED_KEY_BYTES) throw new Error(`a sealed channel key has ${SEALED_KEY_BYTES} bytes, not ${sealed.length}`);
    const ephemeral = publicKeyFromRaw(sealed.subarray(0, PUBLIC_KEY_BYTES));
    const nonce = sealed.subarray(PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES + NONCE_BYTES);
    const tag = sealed.subarray(PUBLIC_KEY_BYTES + NONCE_BYTES, PUBLIC_KEY_BYTES + NONCE_BYTES + TAG_BYTES);
    const ciphertext = sealed.subarray(PUBLIC_KEY_BYTES + NONCE_BYTES + TAG_BYTES);
    const key = wrappingKey(diffieHellman({ privateKey: this.#privateKey, publicKey: ephemeral }), sealed.subarray(0, PUBLIC_KEY_BYTES), context);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad(context));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
  }
}

export interface SealContext {
  jobId: string;
  epoch: number;
  workerId: string;
}

/** Seals a channel key to a worker's registered public key (raw X25519, 32 bytes). */
export function sealChannelKey(channelKey: Uint8Array, workerPublicKey: Uint8Array, context: SealContext): Uint8Array {
  const recipient = publicKeyFromRaw(workerPublicKey);
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralRaw = rawPublicKey(ephemeral.publicKey);
  const key = wrappingKey(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient }), ephemeralRaw, context);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad(context));
  const ciphertext = Buffer.concat([cipher.update(channelKey), cipher.final()]);
  const out = new Uint8Array(SEALED_KEY_BYTES);
  out.set(ephemeralRaw, 0);
  out.set(nonce, PUBLIC_KEY_BYTES);
  out.set(cipher.getAuthTag(), PUBLIC_KEY_BYTES + NONCE_BYTES);
  out.set(ciphertext, PUBLIC_KEY_BYTES + NONCE_BYTES + TAG_BYTES);
  return out;
}

/** True when `raw` is a usable X25519 public key (a registering worker's). */
export function isPublicKey(raw: Uint8Array): boolean {
  if (raw.length !== PUBLIC_KEY_BYTES) return false;
  try {
    publicKeyFromRaw(raw);
    return true;
  } catch {
    return false;
  }
}

function wrappingKey(shared: Buffer, ephemeralRaw: Uint8Array, context: SealContext): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, ephemeralRaw, `eddy channel key ${context.jobId} ${context.epoch} ${context.workerId}`, 32));
}

function aad(context: SealContext): Buffer {
  return Buffer.from(`${context.jobId}\n${context.epoch}\n${context.workerId}`);
}

function rawPublicKey(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url'));
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

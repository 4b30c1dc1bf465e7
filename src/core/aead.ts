import { createCipheriv, createDecipheriv, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';

/**
 * AES-256-GCM with a fresh 96-bit random nonce per call. The output is nonce ‖ ciphertext ‖ tag. Callers bind
 * the ciphertext to its context (an entry's path, a key's purpose) through the additional data, so a value
 * moved to another key fails to decrypt instead of being silently accepted.
 */
export const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Nonces come from the operating system's CSPRNG a few hundred at a time: one call per nonce cost more than the
 * encryption of a small value (a KV write seals four or five). Each nonce is still 96 fresh random bits.
 */
const NONCE_POOL_BYTES = NONCE_BYTES * 341;
const noncePool = Buffer.alloc(NONCE_POOL_BYTES);
let nonceAt = NONCE_POOL_BYTES;

function freshNonce(): Buffer {
  if (nonceAt === NONCE_POOL_BYTES) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(nonceAt, nonceAt + NONCE_BYTES));
  // Each nonce is used once: its bytes in the pool are cleared as it is taken.
  noncePool.fill(0, nonceAt, nonceAt + NONCE_BYTES);
  nonceAt += NONCE_BYTES;
  return nonce;
}

/** `key`: 32 raw bytes, or a key object made of them once (Keyring's term keys). */
export function seal(key: Uint8Array | KeyObject, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Throws when the key is wrong or the data or its additional data were altered. */
export function open(key: Uint8Array | KeyObject, sealed: Uint8Array, aad: Uint8Array): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const nonce = buf.subarray(0, NONCE_BYTES);
  const tag = buf.subarray(buf.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
}

export const newKey = (): Buffer => randomBytes(32);

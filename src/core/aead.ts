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
 * encryption of a small value (a KV write seals three or four). Each nonce is still 96 fresh random bits.
 */
const NONCE_POOL_BYTES = NONCE_BYTES * 341;
const noncePool = Buffer.alloc(NONCE_POOL_BYTES);
let nonceAt = NONCE_POOL_BYTES;

/** `key`: 32 raw bytes, or a key object made of them once (Keyring's term keys). */
export function seal(key: Uint8Array | KeyObject, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  return sealAfter(EMPTY, key, plaintext, aad);
}

const EMPTY = new Uint8Array(0);

/**
 * `header` ‖ seal(): the barrier's entries begin with a header of their own. Written into one buffer, where
 * concatenating the parts made three more buffers and copies per value (a KV write seals three or four).
 */
export function sealAfter(
  header: Uint8Array,
  key: Uint8Array | KeyObject,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Buffer {
  if (nonceAt === NONCE_POOL_BYTES) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  const nonce = noncePool.subarray(nonceAt, nonceAt + NONCE_BYTES);
  nonceAt += NONCE_BYTES;
  try {
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(aad);
    const body = cipher.update(plaintext);
    const rest = cipher.final(); // empty for GCM, which encrypts as a stream
    const tag = cipher.getAuthTag();
    // Sized by the parts themselves, which fill it whole: no byte of allocUnsafe's memory is left in it.
    const out = Buffer.allocUnsafe(header.length + NONCE_BYTES + body.length + rest.length + tag.length);
    let at = 0;
    for (const part of [header, nonce, body, rest, tag]) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  } finally {
    // Each nonce is used once: its bytes in the pool are cleared once used, so that a slot taken twice would show
    // as an all-zero nonce (aead.test.ts looks for one).
    nonce.fill(0);
  }
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
  const plain = decipher.update(buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES));
  const rest = decipher.final(); // checks the tag; empty for GCM
  return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
}

export const newKey = (): Buffer => randomBytes(32);

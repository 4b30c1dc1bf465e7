import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto';
import { UserError } from './user-error.js';

/**
 * The key types the transit engine serves: both are AEADs with a 96-bit nonce and a 128-bit tag, laid out as
 * Vault lays them out (nonce || ciphertext || tag), so a ciphertext carries everything but the key.
 */
export const KEY_TYPES = ['aes256-gcm96', 'chacha20-poly1305'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const isKeyType = (value: string): value is KeyType => (KEY_TYPES as readonly string[]).includes(value);

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

const algorithm: Record<KeyType, CipherGCMTypes | 'chacha20-poly1305'> = {
  'aes256-gcm96': 'aes-256-gcm',
  'chacha20-poly1305': 'chacha20-poly1305',
};

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function seal(type: KeyType, key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  // The overloads of createCipheriv differ per mode; both modes here take the same options.
  const cipher = createCipheriv(algorithm[type] as 'aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  if (aad.length > 0) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

export function open(type: KeyType, key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new UserError('invalid ciphertext length');
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  const decipher = createDecipheriv(algorithm[type] as 'aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(tag);
  if (aad.length > 0) decipher.setAAD(aad);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    // Go's AEADs say this; Vault passes it on to the client.
    throw new UserError('cipher: message authentication failed');
  }
}

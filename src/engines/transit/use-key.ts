import { open, seal } from './ciphers.js';
import { formatCiphertext, parseCiphertext } from './ciphertext.js';
import type { TransitKey } from './keys.js';
import { UserError } from './user-error.js';

/** The version a request encrypts with: 0 means the latest; an explicit one must lie in the allowed range. */
function encryptionVersion(key: TransitKey, requested: number): number {
  if (requested < 0) throw new UserError('key version must be a positive integer');
  if (requested === 0) return key.latest_version;
  if (requested > key.latest_version) {
    throw new UserError('requested version for encryption is higher than the latest key version');
  }
  if (key.min_encryption_version > 0 && requested < key.min_encryption_version) {
    throw new UserError('requested version for encryption is less than the minimum encryption key version');
  }
  // A version retired for decryption (perhaps because it leaked) seals nothing new: what it sealed could not be read
  // back either. Vault allows it when no minimum encryption version is set.
  if (requested < key.min_decryption_version) {
    throw new UserError('requested version for encryption is less than the minimum decryption key version');
  }
  return requested;
}

export function encryptWith(
  key: TransitKey,
  plaintext: Buffer,
  aad: Buffer,
  requestedVersion = 0,
): { ciphertext: string; key_version: number } {
  const version = encryptionVersion(key, requestedVersion);
  const material = key.material.get(version);
  if (!material) throw new UserError('invalid key version');
  return { ciphertext: formatCiphertext(version, seal(key.type, material, plaintext, aad)), key_version: version };
}

export function decryptWith(key: TransitKey, ciphertext: string, aad: Buffer): Buffer {
  const { version, sealed } = parseCiphertext(ciphertext);
  if (version < key.min_decryption_version) {
    throw new UserError('ciphertext or signature version is disallowed by policy (too old)');
  }
  const material = key.material.get(version);
  if (!material) throw new UserError('invalid key version');
  return open(key.type, material, sealed, aad);
}

import { UserError } from './user-error.js';

/**
 * Vault's ciphertext envelope, `vault:v<version>:<base64>`: the key version in clear so the right key opens it,
 * the AEAD output (nonce, ciphertext, tag) in standard base64.
 */
const PREFIX = 'vault:v';

export function formatCiphertext(version: number, sealed: Buffer): string {
  return `${PREFIX}${version}:${sealed.toString('base64')}`;
}

export function parseCiphertext(value: string): { version: number; sealed: Buffer } {
  if (!value.startsWith(PREFIX)) throw new UserError('invalid ciphertext: no prefix');
  const rest = value.slice(PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon < 0) throw new UserError('invalid ciphertext: wrong number of fields');
  const versionText = rest.slice(0, colon);
  if (!/^\d{1,9}$/.test(versionText)) throw new UserError('invalid ciphertext: version number could not be decoded');
  // Vault's oldest ciphertexts carry v0, which means the first version.
  const version = Math.max(1, Number(versionText));
  return { version, sealed: decodeBase64(rest.slice(colon + 1), 'invalid ciphertext: could not decode base64') };
}

/** Strict standard base64 (Go's StdEncoding): Node's decoder would skip bad characters silently. */
export function decodeBase64(value: string, problem: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value)) throw new UserError(problem);
  return Buffer.from(value, 'base64');
}

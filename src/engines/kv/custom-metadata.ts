import { badRequest } from '../../core/errors.js';
import { setOwn } from './versioning.js';

/**
 * custom_metadata: user-provided string pairs describing a secret (not secret themselves, so errors may name them).
 * Vault's limits: at most 64 keys, keys 1..128 bytes, values 1..512 bytes, printable characters only.
 */
const MAX_KEYS = 64;
const MAX_KEY_LENGTH = 128;
const MAX_VALUE_LENGTH = 512;
const PREFIX = 'custom_metadata validation failed';

/**
 * Converts the submitted map to strings as Go's weak decoding does (numbers and booleans become text). With
 * keepNulls, null members survive: a metadata patch uses them to remove keys.
 */
export function parseCustomMetadata(raw: Record<string, unknown>, keepNulls: boolean): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(raw)) {
    let text: string | null;
    if (value === null || value === undefined) text = keepNulls ? null : '';
    else if (typeof value === 'string') text = value;
    else if (typeof value === 'number') text = String(value);
    else if (typeof value === 'boolean') text = value ? '1' : '0';
    else throw badRequest(`${PREFIX}: value for key ${JSON.stringify(key)} must be a string`);
    setOwn(out, key, text);
  }
  return out;
}

/** Checks every pair and reports all problems at once, formatted like Go's multierror as Vault returns them. */
export function validateCustomMetadata(pairs: Record<string, string | null>): void {
  const entries = Object.entries(pairs).filter((entry): entry is [string, string] => entry[1] !== null);
  const errors: string[] = [];
  if (entries.length > MAX_KEYS) {
    errors.push(`${PREFIX}: payload must contain at most ${MAX_KEYS} keys, provided ${entries.length}`);
  } else {
    for (const [key, value] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const quoted = JSON.stringify(key);
      const keyLen = Buffer.byteLength(key);
      const valueLen = Buffer.byteLength(value);
      if (keyLen === 0 || keyLen > MAX_KEY_LENGTH) {
        errors.push(`${PREFIX}: length of key ${quoted} is ${keyLen} but must be 0 < len(key) <= ${MAX_KEY_LENGTH}`);
      }
      if (valueLen === 0 || valueLen > MAX_VALUE_LENGTH) {
        errors.push(
          `${PREFIX}: length of value for key ${quoted} is ${valueLen} but must be 0 < len(value) <= ${MAX_VALUE_LENGTH}`,
        );
      }
      if (!printable(key)) errors.push(`${PREFIX}: key ${quoted} (${key}) contains unprintable characters`);
      if (!printable(value)) errors.push(`${PREFIX}: value for key ${quoted} contains unprintable characters`);
    }
  }
  if (errors.length === 0) return;
  const head = errors.length === 1 ? '1 error occurred:' : `${errors.length} errors occurred:`;
  throw badRequest(`${head}\n\t${errors.map((e) => `* ${e}`).join('\n\t')}\n\n`);
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function printable(text: string): boolean {
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u.test(text);
}

import type { Storage } from './storage.js';

/**
 * Where the cubbyhole engine keeps each token's private storage, shared by the engine (src/engines/cubbyhole/),
 * response wrapping (which writes into a new wrapping token's cubbyhole) and the token store's revocation (which
 * destroys it). A token's entries live under the salted hash of the token (the token store's key for it), so
 * neither the token nor anything that leads back to it is in the storage paths, and one token's prefix never
 * names another's.
 */
export const CUBBYHOLE_TYPE = 'cubbyhole';
export const CUBBYHOLE_PATH = 'cubbyhole/';

/** The storage key of `path` in the cubbyhole of the token whose hash is `tokenHash`. */
export function cubbyholeKey(tokenHash: string, path: string): string {
  return `${tokenHash}/${path}`;
}

/** Every key of a token's cubbyhole, relative to the engine's storage. */
async function keysUnder(storage: Storage, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await storage.list(prefix)) {
    if (key.endsWith('/')) out.push(...(await keysUnder(storage, prefix + key)));
    else out.push(prefix + key);
  }
  return out;
}

/**
 * Deletes everything a token kept in its cubbyhole, in one transaction: a crash leaves all of it or none, and a
 * revocation that failed half-way is retried whole (the token is deleted only after this).
 */
export async function destroyCubbyhole(storage: Storage, tokenHash: string): Promise<void> {
  const keys = await keysUnder(storage, cubbyholeKey(tokenHash, ''));
  if (keys.length > 0) await storage.transaction(keys.map((key) => ({ op: 'delete' as const, key })));
}

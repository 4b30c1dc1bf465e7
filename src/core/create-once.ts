import { isStorageConflict, type Storage } from './storage.js';

/**
 * The value stored at `key`, made by `make` and stored if there is none. The commit checks that there still is none:
 * two nodes making one at the same moment (a salt, on a new store) would each keep their own, and what one hashed
 * with it could never be found by the other. The one refused takes what the other stored.
 */
export async function createOnce(storage: Storage, key: string, make: () => Uint8Array): Promise<Uint8Array> {
  const stored = await storage.get(key);
  if (stored) return stored;
  const made = make();
  try {
    await storage.transaction([
      { op: 'check', key, value: null },
      { op: 'put', key, value: made },
    ]);
    return made;
  } catch (err) {
    const theirs = isStorageConflict(err) ? await storage.get(key) : undefined;
    if (!theirs) throw err;
    return theirs;
  }
}

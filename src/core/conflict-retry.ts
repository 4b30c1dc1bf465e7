import { setTimeout as sleep } from 'node:timers/promises';
import { isStorageConflict, type StorageConflictError } from './storage.js';

/**
 * How many tries a change gets before its caller is told to try again (409). Many: a node whose writers keep
 * winning a hot key (its next writer finds the key's entry cached and commits first, while a loser reads it back
 * from storage) can hold the key for as many writes as it has queued, and a loser must outlast that streak. With
 * three nodes queueing 25 writes each on one secret, 10 tries ran out.
 */
export const CONFLICT_ATTEMPTS = 100;

/**
 * Runs a read-modify-write again, reading anew (or on what the refusal found: `refused`), when its commit was
 * refused because another writer (another node of a shared store) changed what it read: its check op failed
 * (StorageConflictError). A lock of this process cannot keep the other nodes out, so the check in the commit is
 * what does. Gives up after `attempts` tries with the error `giveUp` makes, for changes that keep losing (a secret
 * or token written on every node at once).
 */
export async function retryOnConflict<T>(
  change: (refused?: StorageConflictError) => Promise<T>,
  giveUp: () => Error,
  { attempts = CONFLICT_ATTEMPTS, usesFound = false }: { attempts?: number; usesFound?: boolean } = {},
): Promise<T> {
  let refused: StorageConflictError | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await change(refused);
    } catch (err) {
      if (!isStorageConflict(err)) throw err;
      if (attempt >= attempts) throw giveUp();
      refused = err;
      // A change that makes itself again on what the refusal found (`usesFound`, and it found something) reads
      // nothing and goes out with the store's next batch, at once. Others read again, and writers racing in step
      // would collide again: a few random milliseconds set them apart. Not more with each try: a loser that waits
      // longer and longer only gives the winning node more of its streak.
      if (!usesFound || !err.found()?.size) await sleep(Math.random() * 2);
    }
  }
}

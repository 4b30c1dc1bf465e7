import { setTimeout as sleep } from 'node:timers/promises';
import { isStorageConflict } from './storage.js';

/**
 * Runs a read-modify-write again, reading anew, when its commit was refused because another writer (another node
 * of a shared store) changed what it read: its check op failed (StorageConflictError). A lock of this process
 * cannot keep the other nodes out, so the check in the commit is what does. Gives up after `attempts` tries with
 * the error `giveUp` makes, for changes that keep losing (a secret or token written on every node at once).
 */
export async function retryOnConflict<T>(change: () => Promise<T>, giveUp: () => Error, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await change();
    } catch (err) {
      if (!isStorageConflict(err)) throw err;
      if (attempt >= attempts) throw giveUp();
      // Writers racing in step would collide again: a few random milliseconds set them apart.
      await sleep(Math.random() * 2 * attempt);
    }
  }
}

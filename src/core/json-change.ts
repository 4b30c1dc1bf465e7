import { retryOnConflict } from './conflict-retry.js';
import { CofreError } from './errors.js';
import type { Storage, StorageOp } from './storage.js';
import { jsonBytes, parseJson } from './storage-view.js';

/**
 * Changes one stored JSON document on what it holds when the change commits. `change` gets the document as read
 * (undefined: there is none) and returns what to store, or undefined to store nothing; it may throw to refuse. The
 * commit checks that the key still holds what was read, so a write or delete that came in between, on this node or
 * another, makes it read and decide again: an object deleted while a write of it was under way (a password being
 * hashed) is not made again by that write, and two writes of one document do not lose either's fields. `commit`
 * sends the ops (by default as one transaction of `storage`): a change that reports itself on the change stream
 * passes them to SystemView.reportChange, which commits its log entry with them.
 */
export async function changeJson<T>(
  storage: Storage,
  key: string,
  change: (current: T | undefined) => Promise<T | undefined> | T | undefined,
  commit: (ops: StorageOp[]) => Promise<unknown> = (ops) => storage.transaction(ops),
): Promise<T | undefined> {
  return retryOnConflict(
    async () => {
      const stored = (await storage.get(key)) ?? null;
      const next = await change(stored === null ? undefined : parseJson<T>(stored));
      if (next === undefined) return undefined;
      await commit([
        { op: 'check', key, value: stored },
        { op: 'put', key, value: jsonBytes(next) },
      ]);
      return next;
    },
    () => new CofreError(409, 'the entry kept changing on other nodes while this write was made: try again'),
  );
}

import { waitForChange } from './wait-async.js';

/**
 * Serializes async work per key. A read-modify-write under a key's lock cannot interleave with another one of the
 * same key: two check-and-set writes of a KV key, or a token's use count and its revocation.
 *
 * Within a thread, each key has a queue of its own. When several server threads share one store (src/workers/),
 * a lock also takes the key's slot in a table of slots shared by the threads (shareKeyLocksAcrossThreads), and
 * only then applies what the other threads committed (its holder released the slot after its write was
 * acknowledged), so the read in the critical section is of the latest value. Keys are hashed onto the slots: two
 * keys on one slot only wait for each other across threads. A thread holds a slot re-entrantly (its own queues
 * already keep its different keys apart), so a thread never waits for itself.
 */
export class KeyLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    const slot = threads ? await takeSlot(threads, key) : undefined;
    try {
      return await fn();
    } finally {
      if (slot !== undefined) giveSlot(threads!, slot);
      release();
      // Drop the entry once nobody queued behind us, so the map does not grow with every key ever written.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

interface SharedSlots {
  table: Int32Array;
  /** Slots this thread holds, with how many of its locks hold each. */
  held: Map<number, number>;
  tag: number;
  catchUp: () => void;
}

let threads: SharedSlots | undefined;

/** Slots in a table: enough that unrelated keys seldom share one. */
export const SHARED_LOCK_SLOTS = 1 << 16;

/**
 * Makes every KeyLocks of this thread also exclude the other server threads given the same buffer (Int32 ×
 * SHARED_LOCK_SLOTS, zeroed). `catchUp` applies the other threads' committed changes to this thread's caches.
 */
export function shareKeyLocksAcrossThreads(buffer: SharedArrayBuffer, threadIndex: number, catchUp: () => void): void {
  threads = { table: new Int32Array(buffer), held: new Map(), tag: threadIndex + 1, catchUp };
}

async function takeSlot(shared: SharedSlots, key: string): Promise<number> {
  const slot = slotOf(key);
  const holds = shared.held.get(slot);
  if (holds) {
    shared.held.set(slot, holds + 1);
  } else {
    for (;;) {
      const owner = Atomics.compareExchange(shared.table, slot, 0, shared.tag);
      if (owner === 0) break;
      // Woken by the holder's notify; the timeout only guards against a notify lost between the exchange and the wait.
      await waitForChange(shared.table, slot, owner, 50);
    }
    shared.held.set(slot, 1);
  }
  shared.catchUp();
  return slot;
}

function giveSlot(shared: SharedSlots, slot: number): void {
  const holds = shared.held.get(slot)! - 1;
  if (holds > 0) {
    shared.held.set(slot, holds);
    return;
  }
  shared.held.delete(slot);
  Atomics.store(shared.table, slot, 0);
  Atomics.notify(shared.table, slot);
}

/** FNV-1a over the key's UTF-16 code units: cheap and spread well enough for a lock table. */
function slotOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % SHARED_LOCK_SLOTS;
}

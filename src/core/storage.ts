/**
 * The storage port: the only way Cofre persists anything. Adapters (src/storage/) hold opaque bytes and are
 * untrusted: only the barrier reads and writes them, so everything stored through a Storage handed to the
 * rest of the core is already encrypted.
 */
export interface StorageEntry {
  key: string;
  value: Uint8Array;
}

/**
 * A transaction's ops. A check writes nothing: the transaction applies only if `key` holds exactly `value` (null:
 * no entry), or a value that begins with `prefix`, when it commits; else it applies nothing and fails with
 * StorageConflictError. A read-modify-write checks what it read, so that a writer elsewhere (another node on a
 * shared store) that changed it in between is not overwritten unseen: the loser reads again and retries. (The
 * barrier checks by prefix: each of its entries begins with a nonce drawn for that write alone, so it remembers
 * those 17 bytes of each entry it caches instead of the ciphertext.)
 */
export type StorageOp =
  { op: 'put'; key: string; value: Uint8Array } | { op: 'delete'; key: string } | AppendOp | CheckOp;

/**
 * A put whose key the store chooses: `key` names a log (a prefix ending in "/"), and the entry goes under it as the
 * next position of that log in commit order, `key` + 16 decimal digits (logEntryKey). Positions are given under
 * the lock that orders commits, so they follow one another without gaps among committed transactions (a refused or
 * failed one takes none), and an entry at position n is readable by anyone who can read one at n + 1. The change
 * log needs exactly that: nodes that each picked the next index themselves chose the same ones and overwrote each
 * other's events (docs/architecture.md, "Change stream"). The transaction resolves with the keys given, in op order.
 */
export interface AppendOp {
  op: 'append';
  key: string;
  value: Uint8Array;
}

/** What a committed transaction tells its caller: the keys its append ops were given, in their order, if it had any. */
export type Committed = readonly string[] | void;

export const LOG_POSITION_DIGITS = 16;
/** The lowest and highest key a log's entries can have: every position is 16 digits, so keys sort as numbers. */
export const logKeyRange = (log: string): [string, string] => [
  log + '0'.repeat(LOG_POSITION_DIGITS),
  log + '9'.repeat(LOG_POSITION_DIGITS),
];
export const logEntryKey = (log: string, position: number): string =>
  log + position.toString().padStart(LOG_POSITION_DIGITS, '0');
/** The position an entry key of `log` names, or undefined for a key that is not one. */
export function logPosition(log: string, key: string): number | undefined {
  if (!key.startsWith(log) || key.length !== log.length + LOG_POSITION_DIGITS) return undefined;
  const digits = key.slice(log.length);
  return /^[0-9]+$/.test(digits) ? Number(digits) : undefined;
}

export type CheckOp =
  { op: 'check'; key: string; value: Uint8Array | null } | { op: 'check'; key: string; prefix: Uint8Array };

/** Whether `stored` (undefined: no entry) satisfies a check. */
export function checkHolds(op: CheckOp, stored: Uint8Array | undefined): boolean {
  if ('prefix' in op) {
    return stored !== undefined && stored.length >= op.prefix.length && startsWith(stored, op.prefix);
  }
  if (op.value === null || stored === undefined) return op.value === null && stored === undefined;
  return stored.length === op.value.length && startsWith(stored, op.value);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, prefix.length).equals(prefix);
}

/**
 * A transaction whose check found another value: nothing of it was applied. Names the key, never a value.
 *
 * A store that can say so with the refusal (PostgreSQL's batch function) also tells what the transaction's checked
 * keys held when it was refused (null: no entry), so that its caller can make the change again at once instead of
 * reading them back: a check of what it found holds unless the key changed again since. Kept in a private field,
 * out of reach of anything that would log or serialise the error, for above the barrier these are plaintexts.
 */
export class StorageConflictError extends Error {
  readonly #found: ReadonlyMap<string, Uint8Array | null> | undefined;

  constructor(
    readonly key: string,
    found?: ReadonlyMap<string, Uint8Array | null>,
  ) {
    super(`storage conflict: ${key} was changed by another writer`);
    this.name = 'StorageConflictError';
    this.#found = found;
  }

  /** What the checked keys held (see above), when the store told it: a key left out is not known. */
  found(): ReadonlyMap<string, Uint8Array | null> | undefined {
    return this.#found;
  }

  /** The same refusal as seen through a view whose keys are these under `prefix` (other keys left out). */
  underPrefix(prefix: string): StorageConflictError {
    const key = this.key.startsWith(prefix) ? this.key.slice(prefix.length) : this.key;
    if (!this.#found) return new StorageConflictError(key);
    const found = new Map<string, Uint8Array | null>();
    for (const [k, v] of this.#found) if (k.startsWith(prefix)) found.set(k.slice(prefix.length), v);
    return new StorageConflictError(key, found);
  }
}

export function isStorageConflict(err: unknown): err is StorageConflictError {
  return err instanceof StorageConflictError;
}

export interface Storage {
  /** The value stored under key, or undefined. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Durable when the promise resolves. */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * The keys directly under prefix, sorted, relative to prefix, as Vault lists: a key that continues past the
   * next "/" is returned once as "child/".
   */
  list(prefix: string): Promise<string[]>;
  /**
   * Applies every operation or none; durable when the promise resolves, with the keys given to its append ops.
   * Rejects with StorageConflictError when a check op does not hold.
   */
  transaction(ops: StorageOp[]): Promise<Committed>;
  close(): Promise<void>;
}

/** A node of a cluster as the shared store records it (not secret: no key material, no tokens). */
export interface ClusterNode {
  nodeId: string;
  apiAddr: string;
  lastSeen: Date;
  leader: boolean;
}

/**
 * What a store shared by several Cofre nodes offers besides the port (PostgreSQL). Every node serves requests;
 * caches are kept right by the keys other nodes change, and one node at a time leads (runs background jobs).
 */
export interface SharedStorage extends Storage {
  /** This process's id in the cluster; the changes it commits carry it, so it never hears its own. */
  readonly nodeId: string;
  /**
   * Whether other processes write the store (nodes on one PostgreSQL), or only threads of this one, whose key
   * locks span them all (src/core/key-locks.ts): a read-modify-write under a key lock needs a check op only when
   * another process may change the key in between.
   */
  readonly otherProcesses: boolean;
  /**
   * Calls listener with the storage keys another node changed, after that node committed them. `keys` is
   * undefined when the notification could not say which (too many, or the listener connection was re-established
   * and changes may have been missed): the listener must then drop every cache.
   */
  watchChanges(listener: (keys: string[] | undefined) => void): Promise<void>;
  /**
   * Set while this node may miss other nodes' changes (the connection it hears them on was lost, and no new one
   * listens yet): resolves once it hears them again, after calling the listener with undefined. Requests wait for
   * it (Core.requestHold): a token revoked on another node meanwhile must not be accepted from a cache.
   */
  deaf?(): Promise<void> | undefined;
  /**
   * Hands the watchChanges listener, now and synchronously, every change committed by another node before this
   * call. Only stores that can know that cheaply offer it (server threads of one process: src/workers/); the core
   * calls it as each request starts, so a write another thread acknowledged is never answered with an old value.
   */
  catchUp?(): void;
  /**
   * Campaigns for leadership until stop() or close(): onElected when this node becomes leader, onLost when it stops
   * being leader (its lock connection failed). At most one node is leader at any time.
   */
  campaign(apiAddr: string, events: { onElected(): void; onLost(): void }): Promise<void>;
  /** Stops campaigning (a sealed node must not hold leadership): a leader steps down and releases its lock. */
  resign(): Promise<void>;
  /** The nodes seen in the last minute, with which one leads. */
  nodes(): Promise<ClusterNode[]>;
}

export function isSharedStorage(storage: Storage): storage is SharedStorage {
  return typeof (storage as Partial<SharedStorage>).watchChanges === 'function';
}

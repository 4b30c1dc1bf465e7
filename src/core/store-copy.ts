/**
 * Whole-store copies over the storage port, shared by snapshots and `operator migrate`: the walk that reads every
 * entry of a store and the bounded transactions that write them into another. Entries are copied as the store holds
 * them (barrier-encrypted), so nothing here ever sees a secret in clear.
 */
import { createHash } from 'node:crypto';
import { isStorageConflict, type Storage, type StorageEntry, type StorageOp } from './storage.js';

/** Where the barrier keeps its keyring, and the core its seal configuration and wrapped root key. */
export const KEYRING_KEY = 'core/keyring';
export const SEAL_CONFIG_KEY = 'core/seal-config';
export const ROOT_KEY_KEY = 'core/root-key';
/** Present while a copy (a snapshot restore, a migration) writes the store: see markCopying. */
export const COPY_IN_PROGRESS_KEY = 'core/copy-in-progress';

/** What a walk needs of a store. */
export type ReadableStore = Pick<Storage, 'get' | 'list'>;

/**
 * A store that can be read as of one instant (SQLite: an online backup; PostgreSQL: a REPEATABLE READ transaction).
 * Optional: a walk uses it when the adapter offers it, and otherwise reads the live store key by key.
 */
export interface PointInTimeStore {
  openReadView(): Promise<ReadableStore & { release(): Promise<void> }>;
}

export function offersReadView(store: object): store is PointInTimeStore {
  return typeof (store as Partial<PointInTimeStore>).openReadView === 'function';
}

export interface CopyProgress {
  phase: 'reading' | 'receiving' | 'verifying' | 'clearing' | 'writing' | 'checking';
  entries: number;
  bytes: number;
}

export type ProgressListener = (progress: CopyProgress) => void;

export class StoreNotEmptyError extends Error {}

async function* walkKeys(store: ReadableStore, prefix: string): AsyncGenerator<string> {
  for (const name of await store.list(prefix)) {
    if (name.endsWith('/')) yield* walkKeys(store, prefix + name);
    else yield prefix + name;
  }
}

/**
 * Every entry of a store, in list order, with the keyring last.
 *
 * Over a live store (no read view) the walk is key by key, not a point in time. What holds:
 * - each entry is one committed value (adapters only read committed data);
 * - every entry committed before the walk started and not changed since is in it, with that value;
 * - the keyring can decrypt every entry: the barrier persists a new key term before it writes with it and never
 *   drops a term, so a keyring read after all other entries holds the term of each. Read first, it could miss the
 *   term of an entry written during the walk, and that entry could never be decrypted after a restore.
 * What does not: an entry written during the walk may or may not be in it, and a multi-key transaction that commits
 * during the walk may be seen in part (keys walked before it keep their old values). A store that offers a read
 * view has none of these gaps.
 */
export async function* walkEntries(store: ReadableStore): AsyncGenerator<StorageEntry> {
  for await (const key of walkKeys(store, '')) {
    if (key === KEYRING_KEY) continue;
    const value = await store.get(key);
    // Listed, then deleted before it was read: deleted as far as this walk is concerned.
    if (value !== undefined) yield { key, value };
  }
  const keyring = await store.get(KEYRING_KEY);
  if (keyring !== undefined) yield { key: KEYRING_KEY, value: keyring };
}

/** walkEntries over a read view when the store offers one; the view is released when the iteration ends. */
export async function* walkConsistently(store: ReadableStore): AsyncGenerator<StorageEntry> {
  if (!offersReadView(store)) return yield* walkEntries(store);
  const view = await store.openReadView();
  try {
    yield* walkEntries(view);
  } finally {
    await view.release();
  }
}

export async function isEmpty(store: ReadableStore): Promise<boolean> {
  return (await store.list('')).length === 0;
}

const BATCH_ENTRIES = 256;
const BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Writes entries in transactions of bounded size. The seal configuration is held back for the last one: until it is
 * written the store reads as not initialized, so a copy cut short cannot pass for a usable store (core.initialize
 * writes it last for the same reason).
 */
export class BatchWriter {
  entries = 0;
  bytes = 0;
  private ops: StorageOp[] = [];
  private pendingBytes = 0;
  private sealConfig: StorageEntry | undefined;

  constructor(
    private readonly target: Storage,
    private readonly onProgress?: ProgressListener,
    private readonly limits = { entries: BATCH_ENTRIES, bytes: BATCH_BYTES },
  ) {}

  async add(entry: StorageEntry): Promise<void> {
    if (entry.key === SEAL_CONFIG_KEY) {
      this.sealConfig = entry;
      return;
    }
    this.ops.push({ op: 'put', key: entry.key, value: entry.value });
    this.pendingBytes += Buffer.byteLength(entry.key) + entry.value.byteLength;
    if (this.ops.length >= this.limits.entries || this.pendingBytes >= this.limits.bytes) await this.flush();
  }

  /** Writes what is left, the seal configuration included, and takes the copy's mark away in the same commit. */
  async finish(): Promise<void> {
    if (this.sealConfig) {
      this.ops.push({ op: 'put', key: this.sealConfig.key, value: this.sealConfig.value });
      this.pendingBytes += Buffer.byteLength(this.sealConfig.key) + this.sealConfig.value.byteLength;
      this.sealConfig = undefined;
    }
    this.ops.push({ op: 'delete', key: COPY_IN_PROGRESS_KEY });
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.ops.length === 0) return;
    await this.target.transaction(this.ops);
    this.entries += this.ops.length;
    this.bytes += this.pendingBytes;
    this.ops = [];
    this.pendingBytes = 0;
    this.onProgress?.({ phase: 'writing', entries: this.entries, bytes: this.bytes });
  }
}

/**
 * Marks a store as being written by a copy, in the commit that takes its seal configuration away. Until the copy's
 * last commit (BatchWriter.finish) the store reads as not initialized, and the mark keeps sys/init, which needs no
 * token, from initializing it: a copy cut short (a write the store refused, a lost connection) must not leave a
 * store that whoever calls sys/init first makes their own, nor may another server thread or node initialize it
 * while the copy runs.
 */
export async function markCopying(store: Storage, opts: CopyStart = {}): Promise<void> {
  const mark = Buffer.from(JSON.stringify({ since: new Date().toISOString() }));
  const left = opts.overUnfinished ? await store.get(COPY_IN_PROGRESS_KEY) : undefined;
  try {
    await store.transaction([
      // Another copy into this store now (a restore sent to another server thread) would interleave with this one.
      { op: 'check', key: COPY_IN_PROGRESS_KEY, value: left ?? null },
      { op: 'delete', key: SEAL_CONFIG_KEY },
      { op: 'put', key: COPY_IN_PROGRESS_KEY, value: mark },
    ]);
  } catch (err) {
    if (!isStorageConflict(err)) throw err;
    throw new CopyUnderWayError(
      'another restore or migration is writing this store (or one left it unfinished: restore offline over it)',
    );
  }
}

/** How a copy starts. */
export interface CopyStart {
  /** The store may hold a copy left unfinished (an offline restore or migration over it, the server stopped). */
  overUnfinished?: boolean;
}

/** Another copy marked the store first (markCopying). */
export class CopyUnderWayError extends Error {}

/**
 * Marks the store as being copied into (markCopying) and deletes every other entry: a clear cut short leaves a
 * store that reads as not initialized, and may not be initialized, rather than a damaged one that looks usable.
 */
export async function clearStore(
  store: Storage,
  onProgress?: ProgressListener,
  start: CopyStart = {},
): Promise<number> {
  await markCopying(store, start);
  let deleted = 0;
  let batch: StorageOp[] = [];
  const flush = async (): Promise<void> => {
    await store.transaction(batch);
    deleted += batch.length;
    batch = [];
    onProgress?.({ phase: 'clearing', entries: deleted, bytes: 0 });
  };
  for await (const key of walkKeys(store, '')) {
    if (key === COPY_IN_PROGRESS_KEY) continue;
    batch.push({ op: 'delete', key });
    if (batch.length >= BATCH_ENTRIES) await flush();
  }
  if (batch.length > 0) await flush();
  return deleted;
}

/**
 * A digest of a store's entries that does not depend on their order (engines may list keys in different orders,
 * e.g. under a PostgreSQL collation): the sum of each entry's SHA-256, modulo 2^256. It checks a copy against
 * accidents, not against an adversary.
 */
export class StoreDigest {
  entries = 0;
  bytes = 0;
  private sum = 0n;

  add(entry: StorageEntry): void {
    const key = Buffer.from(entry.key, 'utf8');
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(key.length, 0);
    lengths.writeUInt32BE(entry.value.byteLength, 4);
    const hash = createHash('sha256').update(lengths).update(key).update(entry.value).digest('hex');
    this.sum = (this.sum + BigInt(`0x${hash}`)) & DIGEST_MASK;
    this.entries++;
    this.bytes += key.length + entry.value.byteLength;
  }

  digest(): string {
    return this.sum.toString(16).padStart(64, '0');
  }
}

const DIGEST_MASK = (1n << 256n) - 1n;

export interface CopyResult {
  entries: number;
  bytes: number;
  /** StoreDigest of what was copied. */
  digest: string;
}

/**
 * Copies every entry of source into target, which must be empty unless `reset` (then it is cleared first). For
 * offline use (`operator migrate`): over a live source the copy has walkEntries' guarantees only.
 */
export async function copyStore(
  source: ReadableStore,
  target: Storage,
  opts: { reset?: boolean; onProgress?: ProgressListener } = {},
): Promise<CopyResult> {
  if (!(await isEmpty(target)) && !opts.reset) throw new StoreNotEmptyError('the destination store is not empty');
  // Offline: no server runs on the target, so a mark there was left by a copy that did not finish.
  await clearStore(target, opts.onProgress, { overUnfinished: true });
  const writer = new BatchWriter(target, opts.onProgress);
  const digest = new StoreDigest();
  for await (const entry of walkConsistently(source)) {
    digest.add(entry);
    await writer.add(entry);
  }
  await writer.finish();
  return { entries: digest.entries, bytes: digest.bytes, digest: digest.digest() };
}

/** The StoreDigest of a whole store, to check a copy against what was written. */
export async function digestStore(store: ReadableStore, onProgress?: ProgressListener): Promise<CopyResult> {
  const digest = new StoreDigest();
  for await (const entry of walkConsistently(store)) {
    digest.add(entry);
    if (digest.entries % BATCH_ENTRIES === 0) {
      onProgress?.({ phase: 'checking', entries: digest.entries, bytes: digest.bytes });
    }
  }
  return { entries: digest.entries, bytes: digest.bytes, digest: digest.digest() };
}

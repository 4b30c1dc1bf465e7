import { LRUCache } from 'lru-cache';
import { KeyEpochs } from './key-epochs.js';

/**
 * How many recently changed keys the cache tells apart. When the list is full it is forgotten, and the fills of
 * reads (or writes) that began before that are refused: a few in flight, once every few thousand writes.
 */
const REMEMBERED_CHANGES = 16_384;

/**
 * A bounded LRU of decrypted entries in front of the barrier's storage, so hot reads skip SQLite, AES-GCM and
 * allocation. It lives only while unsealed (sealing clears it). A read fills the cache only if no write touched
 * that key while it was reading, so a read racing a write can never leave the older value behind.
 *
 * A write fills it too, once committed (replace), unless another node's change to the same key was applied to the
 * cache while the write was on its way: this node's own writes are committed and acknowledged in the same order,
 * so the last one kept is the last one committed, but another node's change to that key could be the later of
 * the two. Its notification then arrives either before replace (which refuses) or after (which drops the entry).
 *
 * What this promises: nothing older than a write already acknowledged is served (a write is acknowledged only
 * after its replace, and other threads or nodes hear of it before that). A read concurrent with a write that is
 * not acknowledged yet may see the old value or the new, and on two threads or nodes in either order: the writer
 * keeps serving the old value from its cache until it handles its commit's result, while another thread may
 * already read the new one from the store. (Dropping the entry before the commit did not close that window: a read
 * during the commit filled the old value again. It cost the thread that serves every write 3-4 % of its time.)
 *
 * Both checks are per key (KeyEpochs): with several nodes writing, some other key changes during nearly every read
 * and write, and a global "anything changed" check refused nearly every fill.
 *
 * The LRU itself is lru-cache's: a JavaScript Map kept in recency order (delete, then set again, on every hit)
 * costs tens of microseconds per hit once it holds tens of thousands of entries (V8 rehashes it over and over).
 */
/**
 * A decrypted entry, and what tells the ciphertext it came from from any other (barrier.ts: its header and nonce):
 * a check op names the plaintext its caller read, and storage compares what it holds.
 */
export interface CachedEntry {
  plain: Buffer;
  written: string;
}

export class ReadCache {
  private readonly entries: LRUCache<string, CachedEntry>;
  private readonly maxEntry: number;
  /** Every invalidation, local or remote. */
  private readonly writes = new KeyEpochs(REMEMBERED_CHANGES);
  /** Other nodes' changes only. */
  private readonly remote = new KeyEpochs(REMEMBERED_CHANGES);

  constructor(maxBytes: number) {
    this.maxEntry = maxBytes / 16;
    this.entries = new LRUCache<string, CachedEntry>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => entry.plain.length + entry.written.length,
    });
  }

  get(key: string): CachedEntry | undefined {
    return this.entries.get(key);
  }

  /** Call before a read from storage; pass the result to fill(). */
  epoch(): number {
    return this.writes.current();
  }

  fill(key: string, entry: CachedEntry, epochAtRead: number): void {
    if (this.writes.changedSince(key, epochAtRead)) return;
    this.set(key, entry);
  }

  /** Call once a write or delete of key is done, committed or not (or when what is cached of key may be stale). */
  invalidate(key: string): void {
    this.writes.changed(key);
    this.entries.delete(key);
  }

  /** Another node changed key. */
  invalidateRemote(key: string): void {
    this.remote.changed(key);
    this.invalidate(key);
  }

  /** Call before a write; pass the result to replace() once it is committed. */
  remoteChanges(): number {
    return this.remote.current();
  }

  /**
   * Key was just committed with this value: what invalidate() does after a write, and the value kept in place of
   * the old one, unless another node changed key since `remoteAtWrite` (its change may be the later of the two).
   */
  replace(key: string, entry: CachedEntry, remoteAtWrite: number): void {
    this.writes.changed(key);
    if (this.remote.changedSince(key, remoteAtWrite) || !this.fits(entry)) this.entries.delete(key);
    else this.entries.set(key, entry);
  }

  clear(): void {
    this.writes.changedAll();
    this.remote.changedAll();
    this.entries.clear();
  }

  private set(key: string, entry: CachedEntry): void {
    if (this.fits(entry)) this.entries.set(key, entry);
  }

  private fits(entry: CachedEntry): boolean {
    return entry.plain.length + entry.written.length <= this.maxEntry;
  }
}

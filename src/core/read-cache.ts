import { LRUCache } from 'lru-cache';
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
 * Both checks are per key: with several nodes writing, some other key changes during nearly every read and write,
 * and a global "anything changed" check refused nearly every fill. Only the keys of the reads and writes under way
 * are watched (Watches), a few dozen at a time. (A record of every changed key, kept until it held 16,384 and then
 * forgotten at once, cost each change a write to a large Map: 4.5 % of a node's CPU under two nodes' writes, where
 * the watches cost 3 %; bench/README.md.)
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

/** The keys of reads or writes under way, and how many changes of each came while one was. */
class Watches {
  private readonly keys = new Map<string, { watchers: number; changes: number }>();

  /** Watches `key` until end(key); pass what this returns to changedSince(). */
  start(key: string): number {
    const watch = this.keys.get(key);
    if (!watch) {
      this.keys.set(key, { watchers: 1, changes: 0 });
      return 0;
    }
    watch.watchers++;
    return watch.changes;
  }

  changed(key: string): void {
    const watch = this.keys.get(key);
    if (watch) watch.changes++;
  }

  /**
   * Whether `key`, watched since start() returned `startedAt`, changed since. A key the caller did not watch
   * (`startedAt` undefined, which no count equals, or nothing watches it) may have: nothing is kept on its word.
   */
  changedSince(key: string, startedAt: number | undefined): boolean {
    const watch = this.keys.get(key);
    return watch === undefined || watch.changes !== startedAt;
  }

  end(key: string): void {
    const watch = this.keys.get(key);
    if (watch && --watch.watchers === 0) this.keys.delete(key);
  }

  get size(): number {
    return this.keys.size;
  }
}

/** A read of `key` from storage under way (ReadCache.startRead). */
export interface PendingRead {
  readonly key: string;
  readonly changes: number;
  readonly clears: number;
}

/** A write under way (ReadCache.startWrite): its keys, each with the count of its watch's changes at the start. */
export interface PendingWrite {
  readonly keys: ReadonlyMap<string, number>;
  readonly clears: number;
}

/**
 * What an entry costs beside its plaintext, its write id and its key (measured: 360-460 bytes of heap per entry for
 * the Buffer and its ArrayBuffer, the entry, the strings' headers and the LRU's slots). Counted, so that a cache of
 * many small entries (tokens, leases, KV versions of a hundred bytes) stays near its size: with only the bytes of
 * plaintext and write id counted, 32 MB of such entries would take about 270 MB.
 */
const ENTRY_OVERHEAD = 400;

/**
 * `bytes` in memory of their own, for an entry the cache may keep for long. A small Buffer made by Buffer.from or
 * Buffer.allocUnsafe is a slice of Node's shared pool (64 KiB on Node.js 24), and keeps all of it alive: entries kept
 * from writes each held a slab that other, long dead, allocations had shared (60,000 small entries kept 58 MB of
 * Buffers alive where they held 6 MB).
 */
export function ownCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

export class ReadCache {
  private readonly entries: LRUCache<string, CachedEntry>;
  private readonly maxEntry: number;
  /** Keys being read from storage: any change (local or remote) refuses what they read. */
  private readonly reading = new Watches();
  /** Keys being written: another node's change refuses the value written (it may be the later of the two). */
  private readonly writing = new Watches();
  /** How many times everything was dropped: nothing read or written before a clear may fill after it. */
  private clears = 0;

  constructor(maxBytes: number) {
    this.maxEntry = maxBytes / 16;
    this.entries = new LRUCache<string, CachedEntry>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => sizeOf(key, entry),
    });
  }

  get(key: string): CachedEntry | undefined {
    return this.entries.get(key);
  }

  /** Call before a read of key from storage; then endRead(), always, with what was read if anything. */
  startRead(key: string): PendingRead {
    return { key, changes: this.reading.start(key), clears: this.clears };
  }

  /** The read is over: `entry`, what it read, is kept unless key changed (or everything was dropped) meanwhile. */
  endRead(read: PendingRead, entry?: CachedEntry): void {
    if (entry && read.clears === this.clears && !this.reading.changedSince(read.key, read.changes)) {
      this.set(read.key, entry);
    }
    this.reading.end(read.key);
  }

  /** Call before a write of these keys; pass the result to replace() once committed, and to endWrite(), always. */
  startWrite(keys: Iterable<string>): PendingWrite {
    const started = new Map<string, number>();
    for (const key of keys) if (!started.has(key)) started.set(key, this.writing.start(key));
    return { keys: started, clears: this.clears };
  }

  endWrite(write: PendingWrite): void {
    for (const key of write.keys.keys()) this.writing.end(key);
  }

  /** Call once a write or delete of key is done, committed or not (or when what is cached of key may be stale). */
  invalidate(key: string): void {
    this.reading.changed(key);
    this.entries.delete(key);
  }

  /** Another node changed key. */
  invalidateRemote(key: string): void {
    this.writing.changed(key);
    this.invalidate(key);
  }

  /**
   * Key, one of the write's, was just committed with this value: what invalidate() does after a write, and the
   * value kept in place of the old one, unless another node changed key since the write began (its change may be
   * the later of the two) or everything was dropped meanwhile.
   */
  replace(write: PendingWrite, key: string, entry: CachedEntry): void {
    this.reading.changed(key);
    const kept =
      write.clears === this.clears && !this.writing.changedSince(key, write.keys.get(key)) && this.fits(key, entry);
    if (kept) this.entries.set(key, ownMemory(entry));
    else this.entries.delete(key);
  }

  clear(): void {
    this.clears++;
    this.entries.clear();
  }

  /** How many keys reads and writes under way watch: none once they all ended (for tests). */
  watched(): number {
    return this.reading.size + this.writing.size;
  }

  private set(key: string, entry: CachedEntry): void {
    if (this.fits(key, entry)) this.entries.set(key, ownMemory(entry));
  }

  private fits(key: string, entry: CachedEntry): boolean {
    return sizeOf(key, entry) <= this.maxEntry;
  }
}

function sizeOf(key: string, entry: CachedEntry): number {
  return entry.plain.length + entry.written.length + key.length + ENTRY_OVERHEAD;
}

/** The entry itself when its plaintext has memory of its own (what AES-GCM opens has), else with a copy that has. */
function ownMemory(entry: CachedEntry): CachedEntry {
  const { plain } = entry;
  return plain.byteOffset === 0 && plain.byteLength === plain.buffer.byteLength
    ? entry
    : { plain: ownCopy(plain), written: entry.written };
}

import { LRUCache } from 'lru-cache';

/**
 * A bounded LRU of decrypted entries in front of the barrier's storage, so hot reads skip SQLite, AES-GCM and
 * allocation. It lives only while unsealed (sealing clears it). A read fills the cache only if no write touched
 * storage while it was reading, so a read racing a write can never leave the older value behind.
 *
 * A write fills it too, once committed (keep), unless another node's change was applied to the cache while the
 * write was on its way: this node's own writes are committed and acknowledged in the same order, so the last one
 * kept is the last one committed, but another node's change to the same key could be the later of the two.
 *
 * The LRU itself is lru-cache's: a JavaScript Map kept in recency order (delete, then set again, on every hit)
 * costs tens of microseconds per hit once it holds tens of thousands of entries (V8 rehashes it over and over).
 */
export class ReadCache {
  private readonly entries: LRUCache<string, Buffer>;
  private readonly maxEntry: number;
  private writeEpoch = 0;
  private remoteEpoch = 0;

  constructor(maxBytes: number) {
    this.maxEntry = maxBytes / 16;
    this.entries = new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (value) => value.length || 1 });
  }

  get(key: string): Buffer | undefined {
    return this.entries.get(key);
  }

  /** Call before a read from storage; pass the result to fill(). */
  epoch(): number {
    return this.writeEpoch;
  }

  fill(key: string, value: Buffer, epochAtRead: number): void {
    if (epochAtRead !== this.writeEpoch || value.length > this.maxEntry) return;
    this.entries.set(key, value);
  }

  /** Call before and after every write or delete of key. */
  invalidate(key: string): void {
    this.writeEpoch++;
    this.entries.delete(key);
  }

  /** Another node changed key. */
  invalidateRemote(key: string): void {
    this.remoteEpoch++;
    this.invalidate(key);
  }

  /** Call before a write; pass the result to keep() once it is committed. */
  remoteChanges(): number {
    return this.remoteEpoch;
  }

  /** The value this node just committed under key, unless another node's change came in since `remoteAtWrite`. */
  keep(key: string, value: Buffer, remoteAtWrite: number): void {
    if (remoteAtWrite !== this.remoteEpoch) return;
    this.fill(key, value, this.writeEpoch);
  }

  clear(): void {
    this.writeEpoch++;
    this.remoteEpoch++;
    this.entries.clear();
  }
}

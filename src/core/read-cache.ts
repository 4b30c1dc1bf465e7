/**
 * A bounded LRU of decrypted entries in front of the barrier's storage, so hot reads skip SQLite, AES-GCM and
 * allocation. It lives only while unsealed (sealing clears it). A read fills the cache only if no write touched
 * storage while it was reading, so a read racing a write can never leave the older value behind.
 *
 * A write fills it too, once committed (keep), unless another node's change was applied to the cache while the
 * write was on its way: this node's own writes are committed and acknowledged in the same order, so the last one
 * kept is the last one committed, but another node's change to the same key could be the later of the two.
 */
export class ReadCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  private writeEpoch = 0;
  private remoteEpoch = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Buffer | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value); // most recently used last
    }
    return value;
  }

  /** Call before a read from storage; pass the result to fill(). */
  epoch(): number {
    return this.writeEpoch;
  }

  fill(key: string, value: Buffer, epochAtRead: number): void {
    if (epochAtRead !== this.writeEpoch || value.length > this.maxBytes / 16) return;
    this.drop(key);
    this.entries.set(key, value);
    this.bytes += value.length;
    while (this.bytes > this.maxBytes) this.drop(this.entries.keys().next().value!);
  }

  /** Call before and after every write or delete of key. */
  invalidate(key: string): void {
    this.writeEpoch++;
    this.drop(key);
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
    if (remoteAtWrite !== this.remoteEpoch || value.length > this.maxBytes / 16) return;
    this.fill(key, value, this.writeEpoch);
  }

  clear(): void {
    this.writeEpoch++;
    this.remoteEpoch++;
    this.entries.clear();
    this.bytes = 0;
  }

  private drop(key: string): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.bytes -= old.length;
      this.entries.delete(key);
    }
  }
}

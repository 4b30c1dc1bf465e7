/**
 * A bounded LRU of decrypted entries in front of the barrier's storage, so hot reads skip SQLite, AES-GCM and
 * allocation. It lives only while unsealed (sealing clears it). A read fills the cache only if no write touched
 * storage while it was reading, so a read racing a write can never leave the older value behind.
 */
export class ReadCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  private writeEpoch = 0;

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

  clear(): void {
    this.writeEpoch++;
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

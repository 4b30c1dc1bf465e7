/**
 * A change counter that remembers which keys changed when, so that a reader can ask "did THIS key change since I
 * looked at the counter?" instead of "did anything change?". Under a steady stream of writes to other keys (two
 * nodes or server threads writing at once) the second question is almost always yes, and every cache fill that
 * depends on it is refused.
 *
 * Memory stays bounded: at `limit` keys the list is forgotten at once, and a question about a moment before that
 * is answered "yes, maybe" (a refused fill costs a storage read; a wrong "no" would serve a stale value, a revoked
 * token for one). Forgetting all at once, rather than the oldest first, lets a change update its key's entry in
 * place: a Map kept in change order by delete-and-set slows down badly at this size (see read-cache.ts).
 */
export class KeyEpochs {
  private now = 0;
  /** Every change at this epoch or before may be unlisted. */
  private forgotten = 0;
  /** Key -> epoch of its latest change since `forgotten`. */
  private readonly last = new Map<string, number>();

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 2) throw new Error('KeyEpochs limit must be an integer of at least 2');
  }

  /** Take this before the work whose result depends on keys staying unchanged; pass it to changedSince(). */
  current(): number {
    return this.now;
  }

  changed(key: string): void {
    this.now++;
    if (this.last.size >= this.limit && !this.last.has(key)) {
      this.last.clear();
      this.forgotten = this.now - 1;
    }
    this.last.set(key, this.now);
  }

  /** Anything may have changed (a seal, a notification that could not name its keys). */
  changedAll(): void {
    this.now++;
    this.forgotten = this.now;
    this.last.clear();
  }

  /** Whether `key` changed, or may have, after `since` (a value of current()). */
  changedSince(key: string, since: number): boolean {
    if (since < this.forgotten) return true;
    const at = this.last.get(key);
    return at !== undefined && at > since;
  }
}

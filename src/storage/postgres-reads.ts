/**
 * Group reads: the get() calls a node makes in one event-loop turn (or while its previous read is on the way) go to
 * PostgreSQL as one query. Each query costs the node a socket write that wakes a PostgreSQL backend, which on a
 * busy machine is most of a read's CPU; under load many writers need their metadata at once (a KV write whose key
 * another node wrote last), and one query serves them all. A read still sees every write acknowledged before it
 * was called: it goes out after it.
 */

/** Read queries of one node on their way at once; the next one collects every read that arrives meanwhile. */
const READS_IN_FLIGHT = 2;

interface Waiter {
  resolve: (value: Buffer | undefined) => void;
  reject: (err: unknown) => void;
}

export class ReadBatcher {
  private waiting = new Map<string, Waiter[]>();
  private scheduled = false;
  private inFlight = 0;

  /** `fetch` reads the values of distinct keys in one query; a key it leaves out has no entry. */
  constructor(private readonly fetch: (keys: string[]) => Promise<Map<string, Buffer>>) {}

  get(key: string): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.waiting.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else this.waiting.set(key, [{ resolve, reject }]);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= READS_IN_FLIGHT) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private send(): void {
    if (this.waiting.size === 0 || this.inFlight >= READS_IN_FLIGHT) return;
    const batch = this.waiting;
    this.waiting = new Map();
    this.inFlight++;
    this.fetch([...batch.keys()])
      .then(
        (found) => {
          // Each caller gets a copy of its own: callers may hold on to (and the barrier's cache keeps) what they get.
          for (const [key, waiters] of batch) {
            const value = found.get(key);
            waiters.forEach((w, i) => w.resolve(value === undefined || i === 0 ? value : Buffer.from(value)));
          }
        },
        (err: unknown) => {
          for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.waiting.size > 0) this.schedule();
      });
  }
}

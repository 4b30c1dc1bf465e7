import type { ChainState } from '../core/audit-chain.js';
import { waitForChange } from '../core/wait-async.js';

/**
 * The hash chain of one audit file and a lock over it, in a SharedArrayBuffer so that the server threads of
 * `cofre server --workers N` can each append to the file themselves: under the lock a thread reads the chain, writes
 * its lines and moves the chain on, so the file holds one chain in the order its lines were written. (Relaying
 * every line to one thread instead cost two thread hops per request, which were most of an audited request's time.)
 *
 * The cell also carries what every writer of the file must agree on: a generation that moves on when the file must
 * be opened again (a rotation noticed by one thread, or SIGHUP), and where a torn line must be cut back to.
 */
const LOCK = 0;
const GENERATION = 1;
const HAS_PREV = 2;
/** The generation of the file a cut is owed in. */
const REPAIR_GENERATION = 3;
/** Float64 slots (index in 8-byte units). */
const SEQ = 2;
const REPAIR_TO = 3;
const PREV_OFFSET = 32;
const HASH_BYTES = 32;
const SIZE = PREV_OFFSET + HASH_BYTES;

export class ChainCell {
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;
  private readonly prev: Uint8Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    if (buffer.byteLength !== SIZE) throw new Error('not an audit chain cell');
    this.ints = new Int32Array(buffer, 0, 4);
    this.floats = new Float64Array(buffer, 0, 4);
    this.prev = new Uint8Array(buffer, PREV_OFFSET, HASH_BYTES);
  }

  static create(state: ChainState): ChainCell {
    const cell = new ChainCell(new SharedArrayBuffer(SIZE));
    cell.floats[REPAIR_TO] = -1;
    cell.state = state;
    return cell;
  }

  /** The cell another thread created. */
  static of(buffer: SharedArrayBuffer): ChainCell {
    return new ChainCell(buffer);
  }

  /**
   * Runs `fn` with the lock held. A thread waiting for the lock waits asynchronously: when the machine is busy, the
   * holder may be descheduled inside `fn` (or `fn` may await a big write), and a blocking wait would stall every
   * request of the waiting thread with it.
   */
  async locked<T>(fn: () => T | Promise<T>): Promise<T> {
    while (Atomics.compareExchange(this.ints, LOCK, 0, 1) !== 0) {
      // The timeout only guards against a notify lost between the exchange and the wait.
      await waitForChange(this.ints, LOCK, 1, 50);
    }
    try {
      return await fn();
    } finally {
      Atomics.store(this.ints, LOCK, 0);
      Atomics.notify(this.ints, LOCK, 1);
    }
  }

  /** Read and set under the lock. */
  get state(): ChainState {
    const prev = Atomics.load(this.ints, HAS_PREV) === 1 ? Buffer.from(this.prev).toString('hex') : '';
    return { seq: this.floats[SEQ]!, prev };
  }

  set state({ seq, prev }: ChainState) {
    this.floats[SEQ] = seq;
    if (prev === '') {
      Atomics.store(this.ints, HAS_PREV, 0);
      return;
    }
    const bytes = Buffer.from(prev, 'hex');
    if (bytes.length !== HASH_BYTES) throw new Error('an audit chain link is a SHA-256 in hex');
    this.prev.set(bytes);
    Atomics.store(this.ints, HAS_PREV, 1);
  }

  get generation(): number {
    return Atomics.load(this.ints, GENERATION);
  }

  /** Every writer opens the file again before its next line (lock not needed). */
  reopenAll(): void {
    Atomics.add(this.ints, GENERATION, 1);
  }

  /**
   * Where the file of `generation` must be cut back to before anything else is written to it, or undefined. A cut
   * is owed in the file a writer had open when its write tore (oweCut): once the writers moved to another file, it
   * is not owed there.
   */
  cutOwed(generation: number): number | undefined {
    const at = this.floats[REPAIR_TO]!;
    return at < 0 || Atomics.load(this.ints, REPAIR_GENERATION) !== generation ? undefined : at;
  }

  oweCut(at: number, generation: number): void {
    Atomics.store(this.ints, REPAIR_GENERATION, generation);
    this.floats[REPAIR_TO] = at;
  }

  cutMade(): void {
    this.floats[REPAIR_TO] = -1;
  }
}

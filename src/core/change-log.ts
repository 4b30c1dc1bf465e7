import type { InvalidationHandler } from './invalidation.js';
import { nowIso } from './now-iso.js';
import {
  isStorageConflict,
  logEntryKey,
  logPosition,
  type Committed,
  type Storage,
  type StorageOp,
} from './storage.js';
import { getJson, jsonBytes } from './storage-view.js';

/** One change, as subscribers see it: never a value, only where, what kind and which version. */
export interface ChangeEvent {
  index: number;
  time: string;
  kind: 'write' | 'delete';
  /** The logical path, e.g. "secret/app/db" for a KV v2 secret. */
  path: string;
  /** The path whose read capability lets a subscriber see this event, e.g. "secret/data/app/db". */
  aclPath: string;
  /** The request path that made the change, e.g. "secret/destroy/app/db". */
  requestPath: string;
  version?: number;
}

export type NewChange = Omit<ChangeEvent, 'index' | 'time'>;

const RETENTION = 10_000;
/**
 * The oldest entries one change deletes at most. A node that has not appended for a while (others did) has fallen
 * behind in trimming by as many entries as they appended: deleting them all with its next change made one write of
 * thousands of keys, which PostgreSQL's notification could not name, so every other node dropped every cache (seen
 * in the two-node write benchmark). A few per change catch up soon enough.
 */
const TRIM_PER_CHANGE = 4;
/** How long a gap that the store could not be read to close waits before it is tried again. */
const GAP_RETRY_MS = 1_000;

export function changeOf(event: ChangeEvent): NewChange {
  const { index: _index, time: _time, ...change } = event;
  return change;
}
const key = (index: number): string => logEntryKey('', index);

/** What an entry holds: the event without its index, which is its position in the log (older entries hold both). */
type StoredEvent = Omit<ChangeEvent, 'index'> & { index?: number };

/** A change-log entry waiting for the commit that carries it (ChangeLog.stage). */
export interface StagedChange {
  readonly ops: StorageOp[];
  /** Tells subscribers once `persisted` (the commit carrying `ops`) resolves, with the event; rejects with it. */
  publish(persisted: Promise<Committed>): Promise<ChangeEvent>;
}

/**
 * What a subscriber receives: events in index order, or a reset when some may have been missed (its resume point
 * was trimmed, or the log was loaded again at an unseal).
 */
export type Delivery = { type: 'event'; event: ChangeEvent } | { type: 'reset'; index: number };

/**
 * What the log tells its subscribers' listeners: a delivery, or that every index up to `index` is now told although
 * some of them were not read (heard with nobody subscribed, found in the store after a gap or a missed
 * notification): a subscriber reads those from the store.
 */
type Told = Delivery | { type: 'through'; index: number };

/**
 * The change stream's log: every change is an entry appended to the store in the commit that makes the change, and
 * the store gives it its index, the next in commit order (the storage port's append op). Subscribers are told of
 * changes in index order, each once it is durable and readable here, and can resume after a disconnect or a server
 * restart. The last RETENTION events are kept; a subscriber asking for older ones gets a reset and resynchronises
 * in full.
 *
 * Because indexes follow commits without gaps, a node knows every change up to an index once it has heard of each
 * one: its own commits tell it theirs, other nodes' notifications theirs (PostgreSQL delivers them in commit order).
 * It tells subscribers through the unbroken run it has heard (`told`). A gap that stays once this node's own
 * commits under way have settled is a missed notification (or a commit of unknown outcome): the store says what
 * lies in it.
 */
export class ChangeLog {
  /** Every index up to this one has been told to subscribers (or read from the store by them). */
  private told = 0;
  /**
   * Indexes above `told` that are known committed, each waiting for those below it: the event, or null when it was
   * not read (heard with nobody subscribed, found in the store after a gap).
   */
  private readonly waiting = new Map<number, ChangeEvent | null>();
  /** This node's commits that carry an entry, until they settle: a gap may be one of theirs. */
  private readonly inFlight = new Set<Promise<Committed>>();
  private first = 1;
  /** Counts loads, so that what was under way across one is dropped. */
  private loads = 0;
  private gapWatch: Promise<void> | undefined;
  private reading: Promise<void> | undefined;
  private readonly listeners = new Set<(told: Told) => void>();

  /** `storage` is public so a change can commit its entry with itself (src/core/request/change-capture.ts). */
  constructor(readonly storage: Storage) {}

  /** Events other nodes appended (keys relative to this log's view). */
  readonly invalidation: InvalidationHandler = {
    stage: 'events',
    apply: (keys) => this.heard(keys),
    // A notification was missed (a reconnection, a write too large to name): the store says what was appended.
    reload: () => this.readStore(),
  };

  async load(): Promise<void> {
    const loads = ++this.loads;
    // A commit of this node's still under way (a seal that stopped waiting for it) is either in the listing, and
    // told with it (read through a cache that the seal emptied), or lands after it and is told as it settles.
    const keys = await this.storage.list('');
    if (loads !== this.loads) return;
    const newest = keys.length > 0 ? Number(keys[keys.length - 1]) : 0;
    this.told = newest;
    for (const index of [...this.waiting.keys()]) if (index <= newest) this.waiting.delete(index);
    this.first = keys.length > 0 ? Number(keys[0]) : newest + 1;
    // Loaded again (unsealed after a seal) under live subscribers: what other nodes wrote meanwhile was never
    // heard, so they resynchronise in full, as after a trimmed resume point.
    this.tell({ type: 'reset', index: this.told });
    this.advance();
  }

  /**
   * Where a new subscriber starts "from now": the last change subscribers have been told of. A change committed by
   * the store but not yet acknowledged to this node is not readable here yet (the barrier's cache holds the value
   * before it), so whoever reads the state now sees it neither in the state nor in the stream if the start were
   * past it (the cluster service, subscribing while a KV write was being committed, made no revision of it).
   */
  get lastIndex(): number {
    return this.told;
  }

  /** Appends in a commit of its own; resolves once persisted and delivered to live subscribers. */
  append(change: NewChange): Promise<ChangeEvent> {
    const staged = this.stage(change);
    return staged.publish(this.storage.transaction(staged.ops));
  }

  /**
   * The entry of a change whose caller commits it together with the change itself (one storage transaction, so a
   * crash keeps both or neither). `ops` are relative to this log's storage; the caller hands the commit to
   * `publish`, whose event has the index the store gave.
   */
  stage(change: NewChange): StagedChange {
    const stored: StoredEvent = { time: nowIso(), ...change };
    const ops: StorageOp[] = [{ op: 'append', key: '', value: jsonBytes(stored) }];
    for (let n = 0; n < TRIM_PER_CHANGE && this.told + 1 - this.first >= RETENTION; n++) {
      ops.push({ op: 'delete', key: key(this.first++) });
    }
    return { ops, publish: (persisted) => this.publish(stored, persisted) };
  }

  private publish(stored: StoredEvent, persisted: Promise<Committed>): Promise<ChangeEvent> {
    this.inFlight.add(persisted);
    return persisted.then(
      (committed) => {
        this.inFlight.delete(persisted);
        const index = logPosition('', committed?.[0] ?? '');
        if (index === undefined) throw new Error('the change log entry was committed without an index');
        const event = eventAt(index, stored);
        if (index > this.told) this.waiting.set(index, event);
        this.advance();
        return event;
      },
      (err: unknown) => {
        this.inFlight.delete(persisted);
        // A commit whose outcome is unknown (the connection lost during it) may have landed, at an index only the
        // store knows. A refused check wrote nothing and took no index.
        if (!isStorageConflict(err)) void this.readStore();
        throw err;
      },
    );
  }

  /** Tells subscribers what is known from `told` on without a gap, in index order. */
  private advance(): void {
    let through = 0;
    while (this.waiting.has(this.told + 1)) {
      const index = ++this.told;
      const event = this.waiting.get(index)!;
      this.waiting.delete(index);
      if (event === null) {
        through = index;
        continue;
      }
      if (through > 0) this.tell({ type: 'through', index: through });
      through = 0;
      this.tell({ type: 'event', event });
    }
    if (through > 0) this.tell({ type: 'through', index: through });
    if (this.waiting.size > 0) this.watchGap();
  }

  /**
   * A gap below what was heard: most often one of this node's commits under way, whose index the store gave before
   * it gave the next one to another node, whose notification came first. Once the commits under way now have
   * settled, a gap that is still there is not theirs (later ones take higher indexes), so the store is read.
   */
  private watchGap(): void {
    if (this.gapWatch) return;
    const { told, loads } = this;
    this.gapWatch = Promise.allSettled([...this.inFlight]).then(async () => {
      this.gapWatch = undefined;
      if (loads !== this.loads || this.waiting.size === 0) return;
      if (this.told === told) await this.readStore();
      else this.watchGap();
    });
  }

  /**
   * Every index up to the newest entry in the store is known: those not heard are marked for subscribers to read
   * from the store, or are gone (trimmed, or never committed, which the store's numbering leaves only in entries
   * of older builds). Waits for this node's commits under way when the store was listed, so that its own entries
   * come with their events.
   */
  private readStore(): Promise<void> {
    this.reading ??= (async () => {
      const loads = this.loads;
      try {
        const keys = await this.storage.list('');
        await Promise.allSettled([...this.inFlight]);
        if (loads !== this.loads) return;
        if (keys.length > 0 && Number(keys[0]) > this.first) this.first = Number(keys[0]);
        const newest = keys.length > 0 ? Number(keys[keys.length - 1]) : 0;
        for (let index = this.told + 1; index <= newest; index++) {
          if (!this.waiting.has(index)) this.waiting.set(index, null);
        }
      } catch {
        // Sealed, or the store unreachable: tried again a little later (an unseal loads the log anyway).
        setTimeout(() => this.watchGap(), GAP_RETRY_MS).unref();
        return;
      } finally {
        this.reading = undefined;
      }
      this.advance();
    })();
    return this.reading;
  }

  /**
   * Entries other nodes appended (storage shared between nodes): their subscribers here get them too. With nobody
   * subscribed here only the index matters: a subscriber that comes later reads what it missed from the store. This
   * saves a storage read per write of another node.
   */
  private async heard(keys: readonly string[]): Promise<void> {
    const fresh: number[] = [];
    for (const k of keys) {
      // A key at or below what was told: a repeated notification, or a trimmed entry's deletion.
      const index = logPosition('', k);
      if (index !== undefined && index > this.told && !this.waiting.has(index)) fresh.push(index);
    }
    if (fresh.length === 0) return;
    const events =
      this.listeners.size === 0 ? [] : await Promise.all(fresh.map((index) => this.read(index).catch(() => undefined)));
    fresh.forEach((index, i) => {
      if (index > this.told && !this.waiting.get(index)) this.waiting.set(index, events[i] ?? null);
    });
    this.advance();
  }

  private async read(index: number): Promise<ChangeEvent | undefined> {
    const stored = await getJson<StoredEvent>(this.storage, key(index));
    return stored && eventAt(index, stored);
  }

  private tell(told: Told): void {
    for (const listener of this.listeners) listener(told);
  }

  /**
   * Events after `fromIndex`, then live ones, until the returned iterator is closed. Live events that arrive
   * while the backlog is being read are buffered and delivered after it, without duplicates. A reset comes when
   * some may have been missed (see Delivery).
   */
  async *subscribe(fromIndex: number, signal: AbortSignal): AsyncGenerator<Delivery> {
    const buffered: Told[] = [];
    let wake: (() => void) | undefined;
    const listener = (told: Told): void => {
      buffered.push(told);
      wake?.();
    };
    this.listeners.add(listener);
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      let delivered = fromIndex;
      // The backlog ends at what subscribers have been told of. An entry past it can be in the store already while
      // this node has not finished the commit that carries it: the change it names is not readable here yet (the
      // barrier's cache still holds the value before it), so a subscriber told of it now would read the old value
      // and take the change as seen. The listener above brings it once its commit is done here (found 2026-12-06:
      // an agent's reconnection during a KV write made no revision of it, and the agents never caught up). Taken
      // before the listing: one of this node's changes committed meanwhile may be missing from it while a later
      // one of another node is there, and the backlog must not go past it.
      const told = this.told;
      const stored = fromIndex < this.first - 1 ? [] : await this.storage.list('');
      // Another node may have trimmed past this node's own trimming point: what the store still holds decides.
      // (Only a listing says so: none is made for a resume point already known to be trimmed.)
      if (stored.length > 0 && Number(stored[0]) > this.first) this.first = Number(stored[0]);
      if (fromIndex < this.first - 1) {
        yield { type: 'reset', index: told };
        delivered = told;
      } else {
        for await (const event of this.stored(stored, delivered, told)) {
          delivered = event.index;
          yield { type: 'event', event };
        }
      }
      while (!signal.aborted) {
        const next = buffered.shift();
        if (next?.type === 'through') {
          if (next.index <= delivered) continue;
          const keys = await this.storage.list('');
          if (keys.length > 0 && Number(keys[0]) > delivered + 1) {
            // Trimmed meanwhile: what was not read is gone.
            yield { type: 'reset', index: next.index };
            delivered = next.index;
            continue;
          }
          for await (const event of this.stored(keys, delivered, next.index)) {
            delivered = event.index;
            yield { type: 'event', event };
          }
          continue;
        }
        if (next) {
          const index = next.type === 'reset' ? next.index : next.event.index;
          if (next.type === 'reset' || index > delivered) {
            delivered = index;
            yield next;
          }
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      this.listeners.delete(listener);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The events of the listed `keys` above `after` and up to `upTo`, read from the store in index order. */
  private async *stored(keys: readonly string[], after: number, upTo: number): AsyncGenerator<ChangeEvent> {
    for (const k of keys) {
      const index = logPosition('', k);
      if (index === undefined || index <= after) continue;
      if (index > upTo) break;
      const event = await this.read(index);
      if (event) yield event;
    }
  }

  /** For tests and metrics. */
  get subscriberCount(): number {
    return this.listeners.size;
  }
}

/** The event an entry holds, with its index: its position (an older entry's own field says the same). */
function eventAt(index: number, stored: StoredEvent): ChangeEvent {
  const { index: _own, ...rest } = stored;
  return { index, ...rest };
}

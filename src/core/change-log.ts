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
/**
 * How long a gap below what was heard may stay before the store is read for it: the notification that closes it
 * may still be on its way (the events stage takes them one at a time, reading each event for subscribers). Also
 * the pace of retries when the store could not be read.
 */
const GAP_GRACE_MS = 200;
/** The most a gap waits for this node's own commits that may hold it (one may hang on a lost connection). */
const GAP_WAIT_MS = 5_000;
/** A gap of at most this many indexes is read entry by entry, with the events; a longer one by listing the log. */
const GAP_READ_ENTRIES = 64;

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
  /** This node's commits that carry an entry, until they settle, each with its number: a gap may be theirs. */
  private readonly inFlight = new Map<Promise<Committed>, number>();
  private commits = 0;
  /** Notifications being taken in (their events read): a gap may be theirs too. */
  private hearing = 0;
  private first = 1;
  /**
   * Oldest entries whose deletion went with a change whose commit was refused or failed: `first` had already moved
   * past them, so the next changes send their deletion again (deleting an entry already gone does nothing).
   */
  private untrimmed: number[] = [];
  /** Counts loads, so that what was under way across one is dropped. */
  private loads = 0;
  private gapTimer: NodeJS.Timeout | undefined;
  /** Where `told` stood when a gap was first seen there, and which of this node's commits were under way then. */
  private gap: { told: number; since: number; commitsBefore: number } | undefined;
  private reading: Promise<void> | undefined;
  /** A read of the store was asked for (a missed notification) while one was under way, or failed. */
  private storeUnread = false;
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
    // What was heard before (a store restored from a snapshot may hold other events at those indexes) is forgotten.
    // A commit of this node's still under way (a seal that stopped waiting for it) is either in the listing, and
    // told with it (read through a cache that the seal emptied), or lands after it and is told as it settles.
    this.waiting.clear();
    this.gap = undefined;
    // Below the log as loaded now, or (a store restored from a snapshot) indexes that may hold other events.
    this.untrimmed = [];
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

  /**
   * Appends in a commit of its own; resolves once persisted, with the event (told to live subscribers then, or once
   * the indexes below it are known).
   */
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
    const trims = this.untrimmed.splice(0, TRIM_PER_CHANGE);
    while (trims.length < TRIM_PER_CHANGE && this.told + 1 - this.first >= RETENTION) trims.push(this.first++);
    for (const index of trims) ops.push({ op: 'delete', key: key(index) });
    const loads = this.loads;
    const untrimmed = () => {
      if (loads === this.loads) this.untrimmed.push(...trims);
    };
    return { ops, publish: (persisted) => this.publish(stored, persisted, untrimmed) };
  }

  /** `untrimmed` is called when the commit fails: its entry's trims are then still to do. */
  private publish(stored: StoredEvent, persisted: Promise<Committed>, untrimmed: () => void): Promise<ChangeEvent> {
    this.inFlight.set(persisted, ++this.commits);
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
        untrimmed();
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
   * A gap below what was heard: most often one of this node's commits under way (the store gave it its index before
   * it gave the next one to another node, whose notification came first), or a notification still on its way. A gap
   * that outlasts both (after a grace, and once this node's commits under way when it was seen have settled, for
   * GAP_WAIT_MS at most) is a missed notification, and the store says what lies in it. Paced by a timer, so that a
   * gap the store cannot close (or a store that cannot be read) is tried again, never in a loop.
   */
  private watchGap(): void {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      void this.checkGap();
    }, GAP_GRACE_MS);
    this.gapTimer.unref();
  }

  private async checkGap(): Promise<void> {
    if (this.storeUnread) return this.readStore();
    if (this.waiting.size === 0) {
      this.gap = undefined;
      return;
    }
    const now = Date.now();
    if (this.gap?.told !== this.told) {
      this.gap = { told: this.told, since: now, commitsBefore: this.commits };
      return this.watchGap();
    }
    const oldestCommit = Math.min(...this.inFlight.values());
    const mayBeTheirs = oldestCommit <= this.gap.commitsBefore || this.hearing > 0;
    if (mayBeTheirs && now - this.gap.since < GAP_WAIT_MS) return this.watchGap();
    const lowest = Math.min(...this.waiting.keys());
    if (lowest - this.told - 1 > GAP_READ_ENTRIES) return this.readStore();
    const loads = this.loads;
    const gap = Array.from({ length: lowest - this.told - 1 }, (_, i) => this.told + 1 + i);
    try {
      const events = await Promise.all(gap.map((index) => this.read(index)));
      if (loads !== this.loads) return;
      // One that is not there was trimmed, or never committed (only older builds left such gaps).
      gap.forEach((index, i) => index > this.told && this.waiting.set(index, events[i] ?? null));
    } catch {
      this.storeUnread = true;
    }
    this.advance();
    if (this.storeUnread) this.watchGap();
  }

  /**
   * Every index up to the newest entry in the store is known: those not heard are marked for subscribers to read
   * from the store, or are gone (trimmed, or never committed). Waits for this node's commits under way when the
   * store was listed (for GAP_WAIT_MS at most), so that its own entries come with their events: told of one from the
   * store before its commit is done here, a subscriber could read the value before it through this node's cache.
   */
  private readStore(): Promise<void> {
    if (this.reading) {
      // Asked after this listing began: what was missed may not be in it.
      this.storeUnread = true;
      return this.reading;
    }
    this.storeUnread = false;
    const loads = this.loads;
    this.reading = (async () => {
      try {
        const keys = await this.storage.list('');
        const settled = Promise.allSettled([...this.inFlight.keys()]);
        await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, GAP_WAIT_MS).unref())]);
        if (loads !== this.loads) return;
        if (keys.length > 0 && Number(keys[0]) > this.first) this.first = Number(keys[0]);
        const newest = keys.length > 0 ? Number(keys[keys.length - 1]) : 0;
        for (let index = this.told + 1; index <= newest; index++) {
          if (!this.waiting.has(index)) this.waiting.set(index, null);
        }
      } catch {
        // Sealed, or the store unreachable: tried again shortly (an unseal loads the log anyway).
        this.storeUnread = true;
      } finally {
        this.reading = undefined;
      }
      this.advance();
      if (this.storeUnread) this.watchGap();
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
    let events: (ChangeEvent | undefined)[] = [];
    if (this.listeners.size > 0) {
      this.hearing++;
      try {
        events = await Promise.all(fresh.map((index) => this.read(index).catch(() => undefined)));
      } finally {
        this.hearing--;
      }
    }
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
      // A resume point past every entry the store holds is from another history of the log: a snapshot restored
      // since rolled the log back, and its indexes are given again. Waiting for them to pass it would skip every
      // change until then. (Not `told`: another node's entry may be in the store before this node hears of it.)
      const newest = stored.length > 0 ? Number(stored.at(-1)) : 0;
      if (fromIndex < this.first - 1 || fromIndex > Math.max(newest, told)) {
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

import type { InvalidationHandler } from './invalidation.js';
import { nowIso } from './now-iso.js';
import { isStorageConflict, type Storage, type StorageOp } from './storage.js';
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
/** How many of its own events a node remembers to repair an index collision; collisions happen within milliseconds. */
const RECENT = 1_000;

function changeOf(event: ChangeEvent): NewChange {
  const { index: _index, time: _time, ...change } = event;
  return change;
}
const key = (index: number): string => index.toString().padStart(16, '0');

/** A change-log entry waiting for the commit that carries it (ChangeLog.stage). */
export interface StagedChange {
  readonly event: ChangeEvent;
  readonly ops: StorageOp[];
  /** Tells subscribers once `persisted` (the commit carrying `ops`) resolves; rejects with it. */
  publish(persisted: Promise<void>): Promise<ChangeEvent>;
}

/**
 * What a subscriber receives: events in index order, or a reset when some may have been missed (its resume point
 * was trimmed, the log was loaded again at an unseal, or more notifications were lost than are read back).
 */
export type Delivery = { type: 'event'; event: ChangeEvent } | { type: 'reset'; index: number };

/**
 * What the log tells its subscribers' listeners: a delivery, or that every index up to `index` is now told although
 * some of them were not read (heard with nobody subscribed, a commit of unknown outcome, what load() found): a
 * subscriber reads those from the store.
 */
type Told = Delivery | { type: 'through'; index: number };

/** Waiting to be told (ChangeLog.release): another node's event, or only an index, read from the store when due. */
type Queued = ChangeEvent | number;
const indexOf = (queued: Queued): number => (typeof queued === 'number' ? queued : queued.index);

/**
 * The change stream's log: every change gets the next index and is persisted (behind the barrier) before anyone
 * is told, so a subscriber can resume after a disconnect or a server restart. The last RETENTION events are
 * kept; a subscriber asking for older ones gets a reset and resynchronises in full.
 */
export class ChangeLog {
  /** The last index handed out: a staged change takes it before its commit is done. */
  private last = 0;
  /**
   * The last index subscribers have been told of (in index order): every change up to it is durable and readable
   * through this node's caches. Never past one of this node's own changes still being committed (see release).
   */
  private told = 0;
  /**
   * The highest index known committed (this node's own, published, and other nodes', ingested) or that may be (a
   * commit of unknown outcome, the newest entry load() found).
   */
  private heard = 0;
  /**
   * What waits, in index order, for this node's own earlier changes to be committed (release): other nodes' events
   * that were read, and bare indexes (other nodes' heard with nobody subscribed, this node's of unknown outcome, the
   * newest entry at load).
   */
  private queued: Queued[] = [];
  private first = 1;
  private readonly listeners = new Set<(told: Told) => void>();
  private notifyQueue: Promise<void> = Promise.resolve();
  /** This node's latest events by index, to notice another node overwriting one (see ingest). */
  private readonly recent = new Map<number, ChangeEvent>();
  /**
   * This node's events staged and not yet settled, for the same: another node's notification of the same index can
   * come before this node hears that its own commit is done (both in one group commit, the notification first).
   */
  private readonly pending = new Map<number, ChangeEvent>();

  /** `storage` is public so a change can commit its entry with itself (src/core/request/change-capture.ts). */
  constructor(readonly storage: Storage) {}

  /** Events other nodes appended (keys relative to this log's view), taken in index order. */
  readonly invalidation: InvalidationHandler = {
    stage: 'events',
    apply: async (keys) => {
      for (const key of [...keys].sort()) await this.ingest(key);
    },
    // A notification was missed (a reconnection, a write too large to name): the newest entry is taken as heard,
    // and with someone subscribed ingest reads what lies between (up to RECENT entries back; a reset past that), as
    // for a notification that came out of order.
    reload: async () => {
      const newest = (await this.storage.list('')).at(-1);
      if (newest !== undefined) await this.ingest(newest);
    },
  };

  async load(): Promise<void> {
    // A commit of this node's may still be in flight (a seal that stopped waiting for it): its index is not handed
    // out again, and "now" does not pass it. One that lands while the store is listed may be missing from the
    // listing although it was told: it counts as heard.
    // Other nodes' entries heard while listing (the barrier is unsealed) may be missing from it too.
    const inFlight = [...this.pending.keys()];
    const before = { last: this.last, heard: this.heard };
    const keys = await this.storage.list('');
    const newest = keys.length > 0 ? Number(keys[keys.length - 1]) : 0;
    const landed = inFlight.filter((index) => this.recent.has(index));
    const newestPending = [...this.pending.keys()].at(-1) ?? 0;
    const heardMeanwhile = this.heard > before.heard ? this.heard : 0;
    this.last = Math.max(newest, newestPending, ...landed, this.last > before.last ? this.last : 0);
    this.heard = Math.max(newest, ...landed, heardMeanwhile);
    this.told = 0;
    this.queued = [];
    this.release();
    // What lies between "now" and what is heard (past that commit in flight) is read from the store once it is.
    if (this.heard > this.told) this.queued.push(this.heard);
    this.first = keys.length > 0 ? Number(keys[0]) : this.last + 1;
    // Loaded again (unsealed after a seal) under live subscribers: what other nodes wrote meanwhile was never
    // heard, so they resynchronise in full, as after a trimmed resume point.
    this.tell({ type: 'reset', index: this.told });
  }

  /**
   * Where a new subscriber starts "from now": the last change subscribers have been told of, not the last index
   * handed out. A change staged but not yet committed has an index already; a subscriber starting after it would
   * skip it, although its write is not readable yet, so whoever reads the state at that moment sees it neither
   * in the state nor in the stream (the cluster service, subscribing while a KV write was being committed, made
   * no revision of it and its agents never caught up).
   */
  get lastIndex(): number {
    return this.told;
  }

  /** Appends in order, in a commit of its own; resolves once persisted and delivered to live subscribers. */
  append(change: NewChange): Promise<ChangeEvent> {
    const staged = this.stage(change);
    return staged.publish(this.storage.transaction(staged.ops));
  }

  /**
   * Takes the next index for a change whose entry the caller commits together with the change itself (one
   * storage transaction, so a crash keeps both or neither). `ops` are relative to this log's storage; the caller
   * must issue the commit that carries them before anything else is staged or appended, and hand it to `publish`.
   */
  stage(change: NewChange): StagedChange {
    const index = ++this.last;
    const event: ChangeEvent = { index, time: nowIso(), ...change };
    const ops: StorageOp[] = [{ op: 'put', key: key(index), value: jsonBytes(event) }];
    for (let n = 0; n < TRIM_PER_CHANGE && index - this.first >= RETENTION; n++) {
      ops.push({ op: 'delete', key: key(this.first++) });
    }
    this.pending.set(index, event);
    return { event, ops, publish: (persisted) => this.publish(event, persisted) };
  }

  private publish(event: ChangeEvent, persisted: Promise<void>): Promise<ChangeEvent> {
    // The storage adapter commits in call order, so concurrent appends share a commit and keep index order;
    // subscribers are told in index order (a repaired collision aside, see ingest), each once it is durable.
    // Its failure reaches the caller through `done`; until the appends before it settle nobody else awaits it,
    // and an unawaited rejection would end the process.
    persisted.catch(() => undefined);
    const done = this.notifyQueue.then(() => persisted);
    this.notifyQueue = done.catch(() => undefined);
    return done.then(
      () => {
        this.heard = Math.max(this.heard, event.index);
        this.recent.set(event.index, event);
        if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
        this.pending.delete(event.index);
        this.tell({ type: 'event', event });
        this.release();
        return event;
      },
      (err: unknown) => {
        this.pending.delete(event.index);
        // A commit whose outcome is unknown (the connection lost during it) may have landed: subscribers read its
        // index from the store, where it is or is not. A failed check wrote nothing.
        if (!isStorageConflict(err) && event.index > this.told) {
          this.heard = Math.max(this.heard, event.index);
          this.enqueue(event.index);
        }
        this.release();
        throw err;
      },
    );
  }

  /**
   * Moves `told` on to what is heard, but not past this node's own oldest change still being committed, and tells
   * subscribers the other nodes' events held back below it. Another node's event can come while an earlier one of
   * this node is in its commit (the other node read it in the store first): told of it then, a subscriber starting
   * "from now" skipped this node's change, one reading the backlog read it while this node's cache still held the
   * value before it, and a live one dropped it as older than what it had seen.
   */
  private release(): void {
    const oldestPending = this.pending.keys().next();
    const floor = oldestPending.done ? Infinity : oldestPending.value - 1;
    this.told = Math.max(this.told, Math.min(this.heard, floor));
    let ready = 0;
    while (ready < this.queued.length && indexOf(this.queued[ready]!) <= this.told) ready++;
    if (ready === 0) return;
    const due = this.queued.splice(0, ready);
    // One that was not read: subscribers read everything up to the last one due from the store, in order.
    if (due.some((q) => typeof q === 'number')) this.tell({ type: 'through', index: indexOf(due.at(-1)!) });
    else for (const event of due as ChangeEvent[]) this.tell({ type: 'event', event });
  }

  /** Keeps `queued` in index order (a notification can come out of order). */
  private enqueue(item: Queued): void {
    let at = this.queued.length;
    while (at > 0 && indexOf(this.queued[at - 1]!) > indexOf(item)) at--;
    this.queued.splice(at, 0, item);
  }

  private tell(told: Told): void {
    for (const listener of this.listeners) listener(told);
  }

  /**
   * An event another node appended (storage shared between nodes): its subscribers here get it too, and the next
   * local append goes after it.
   *
   * Two nodes appending in the same instant can pick the same index, and the later write replaces the earlier one.
   * The node whose event was replaced notices here (the stored event is not the one it wrote) and appends both
   * changes again under new indexes: its own, for the other nodes' subscribers, and the other node's, for its
   * own subscribers, who already saw this index. A change may so reach a subscriber twice. (Not always: the loser
   * repairs only while its event is among `recent`, and events are lost when several nodes append at once:
   * docs/architecture.md, "Change stream", known defect.)
   */
  async ingest(storageKey: string): Promise<void> {
    // With nobody subscribed here and no event of this node at that index, only the index matters: a subscriber
    // that comes later reads what it missed from the store. This saves a storage read per write of another node.
    const index = Number(storageKey);
    const ours = this.recent.has(index) || this.pending.has(index);
    if (this.listeners.size === 0 && Number.isSafeInteger(index) && !ours) {
      if (index > this.last) this.last = index;
      // The other node committed it before notifying: a subscriber from now starts after it, as after a read one.
      this.heard = Math.max(this.heard, index);
      // Unless a change of this node is still in flight below it: then a subscriber may come before that settles,
      // and its backlog ends before this index, so release() tells it to read this one from the store.
      if ((this.pending.size > 0 || this.queued.length > 0) && index > this.told) this.enqueue(index);
      this.release();
      return;
    }
    // Another node's entry at an index already passed: a repeated notification, or a trimmed entry's deletion.
    if (!ours && index <= this.last) return;
    const event = await getJson<ChangeEvent>(this.storage, storageKey);
    if (!event) return;
    const mine = this.recent.get(event.index) ?? this.pending.get(event.index);
    if (mine !== undefined && JSON.stringify(mine) !== JSON.stringify(event)) {
      this.recent.delete(event.index);
      this.pending.delete(event.index);
      // Both changes are appended again below: that an earlier held-back event may now be told before this node's
      // own overwritten one is of no matter, since subscribers get both again after it.
      this.release();
      await this.append(changeOf(event));
      await this.append(changeOf(mine));
      return;
    }
    if (event.index <= this.last) return;
    // Notifications may arrive out of order, or one may be missed: what lies between is read from the store.
    const missed: ChangeEvent[] = [];
    for (let index = this.last + 1; index < event.index && event.index - index < RECENT; index++) {
      const between = await getJson<ChangeEvent>(this.storage, key(index));
      if (between) missed.push(between);
    }
    if (event.index <= this.last) return; // another ingest got there while we read
    // More were missed than are read back (a long loss of the notifications): subscribers resynchronise in full.
    if (event.index - this.last > RECENT) this.tell({ type: 'reset', index: this.told });
    this.last = event.index;
    this.heard = Math.max(this.heard, event.index);
    for (const e of [...missed, event]) this.enqueue(e);
    this.release();
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
        for (const k of stored) {
          if (Number(k) <= delivered) continue;
          if (Number(k) > told) break;
          const event = await getJson<ChangeEvent>(this.storage, k);
          if (!event) continue;
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
          for (const k of keys) {
            if (Number(k) <= delivered) continue;
            if (Number(k) > next.index) break;
            const event = await getJson<ChangeEvent>(this.storage, k);
            if (!event) continue;
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

  /** For tests and metrics. */
  get subscriberCount(): number {
    return this.listeners.size;
  }
}

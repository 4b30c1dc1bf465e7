import type { Storage, StorageOp } from './storage.js';
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
const key = (index: number): string => index.toString().padStart(16, '0');

/** What a subscriber receives: events in index order, or a reset when its resume point was pruned. */
export type Delivery = { type: 'event'; event: ChangeEvent } | { type: 'reset'; index: number };

/**
 * The change stream's log: every change gets the next index and is persisted (behind the barrier) before anyone
 * is told, so a subscriber can resume after a disconnect or a server restart. The last RETENTION events are
 * kept; a subscriber asking for older ones gets a reset and resynchronises in full.
 */
export class ChangeLog {
  private last = 0;
  private first = 1;
  private readonly listeners = new Set<(event: ChangeEvent) => void>();
  private notifyQueue: Promise<void> = Promise.resolve();

  constructor(private readonly storage: Storage) {}

  async load(): Promise<void> {
    const keys = await this.storage.list('');
    this.last = keys.length > 0 ? Number(keys[keys.length - 1]) : 0;
    this.first = keys.length > 0 ? Number(keys[0]) : this.last + 1;
  }

  get lastIndex(): number {
    return this.last;
  }

  /** Appends in order; resolves once persisted and delivered to live subscribers. */
  append(change: NewChange): Promise<ChangeEvent> {
    const index = ++this.last;
    const event: ChangeEvent = { index, time: new Date().toISOString(), ...change };
    const ops: StorageOp[] = [{ op: 'put', key: key(index), value: jsonBytes(event) }];
    while (index - this.first >= RETENTION) ops.push({ op: 'delete', key: key(this.first++) });
    // The storage adapter commits in call order, so concurrent appends share a commit and keep index order;
    // subscribers are told strictly in index order, each once its own event is durable.
    const persisted = this.storage.transaction(ops);
    const done = this.notifyQueue.then(() => persisted);
    this.notifyQueue = done.catch(() => undefined);
    return done.then(() => {
      for (const listener of this.listeners) listener(event);
      return event;
    });
  }

  /**
   * An event another node appended (storage shared between nodes): its subscribers here get it too, and the next
   * local append goes after it. Two nodes appending in the same instant can still pick the same index (the later
   * write wins); an index sequence shared through the store would close that gap.
   */
  async ingest(storageKey: string): Promise<void> {
    const event = await getJson<ChangeEvent>(this.storage, storageKey);
    if (!event || event.index <= this.last) return;
    this.last = event.index;
    for (const listener of this.listeners) listener(event);
  }

  /**
   * Events after `fromIndex`, then live ones, until the returned iterator is closed. Live events that arrive
   * while the backlog is being read are buffered and delivered after it, without duplicates.
   */
  async *subscribe(fromIndex: number, signal: AbortSignal): AsyncGenerator<Delivery> {
    const buffered: ChangeEvent[] = [];
    let wake: (() => void) | undefined;
    const listener = (event: ChangeEvent): void => {
      buffered.push(event);
      wake?.();
    };
    this.listeners.add(listener);
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      let delivered = fromIndex;
      if (fromIndex < this.first - 1) {
        yield { type: 'reset', index: this.last };
        delivered = this.last;
      } else {
        for (const k of await this.storage.list('')) {
          if (Number(k) <= delivered) continue;
          const event = await getJson<ChangeEvent>(this.storage, k);
          if (!event) continue;
          delivered = event.index;
          yield { type: 'event', event };
        }
      }
      while (!signal.aborted) {
        const next = buffered.shift();
        if (next) {
          if (next.index > delivered) {
            delivered = next.index;
            yield { type: 'event', event: next };
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

/**
 * Which store owns which storage keys, for keeping one node's caches true to a store other nodes write. Each store
 * registers the prefix of the keys it caches, where it is constructed (src/core/core.ts); applyRemoteChanges
 * (src/core/remote-changes.ts) hands every changed key to the handler of the longest matching prefix.
 *
 * A handler works in two parts, so that one batch of changed keys is applied without a stale read in between:
 * `drop` is synchronous and runs for every key before anything is awaited, so a request arriving after the
 * notification never sees the old value; `apply` runs once per batch afterwards, in the order of its `stage`.
 */

/**
 * The order in which one batch's asynchronous reloads run. The keyring first: everything else is decrypted with it.
 * The mount tables next: engines are rebuilt from them. Leases after the mounts whose engines revoke them. Change
 * events last, in index order.
 */
export const STAGES = ['keyring', 'mounts', 'audit', 'leases', 'events'] as const;
export type Stage = (typeof STAGES)[number];

/**
 * The stages whose reload a request arriving after the notification waits for: what decrypts, routes and audits
 * it. Between server threads, a thread hears of a change before it is acknowledged, so a mount or an audit device
 * changed through one is in place on every other for each request that starts after the acknowledgement; a node on
 * PostgreSQL hears of it a few milliseconds later, and holds the requests that start from then on. Leases and
 * change events are not waited for: they change with nearly every write, and a request does not read them through
 * these reloads.
 */
export const HOLDING_STAGES: ReadonlySet<Stage> = new Set(['keyring', 'mounts', 'audit']);

export interface InvalidationHandler {
  /** Another node changed this key (relative to the registered prefix): forget what is cached of it, now. */
  drop?(key: string): void;
  /** When in a batch `apply` and `reload` run. Required with either of them. */
  stage?: Stage;
  /** Once per batch, after every drop, with the batch's keys under the prefix in the order they came. */
  apply?(keys: string[]): Promise<void>;
  /** The changed keys are unknown (a missed notification): forget everything cached, now. */
  dropAll?(): void;
  /** ... and then read it all again, in stage order. */
  reload?(): Promise<void>;
}

export class InvalidationRegistry {
  private readonly handlers = new Map<string, InvalidationHandler>();

  /**
   * Registers the handler of every key that starts with `prefix` (a longer registered prefix wins). One handler
   * may own several prefixes: its apply then runs once per batch, with the keys of all of them.
   */
  on(prefix: string, handler: InvalidationHandler): void {
    if (prefix === '') throw new Error('a store must name the prefix of the keys it owns');
    if (this.handlers.has(prefix)) throw new Error(`storage prefix "${prefix}" is already registered`);
    if ((handler.apply || handler.reload) && !handler.stage) throw new Error(`"${prefix}": apply needs a stage`);
    this.handlers.set(prefix, handler);
  }

  /** The handler owning a key, and the key relative to its prefix; undefined if no store caches it. */
  owner(key: string): { handler: InvalidationHandler; key: string } | undefined {
    let best = '';
    for (const prefix of this.handlers.keys()) if (key.startsWith(prefix) && prefix.length > best.length) best = prefix;
    const handler = best === '' ? undefined : this.handlers.get(best);
    return handler && { handler, key: key.slice(best.length) };
  }

  /** Every registered handler, once each. */
  all(): InvalidationHandler[] {
    return [...new Set(this.handlers.values())];
  }
}

/** Handlers in stage order; the sort is stable, so registration order holds within a stage. */
export function byStage(handlers: InvalidationHandler[]): InvalidationHandler[] {
  const rank = (h: InvalidationHandler): number => (h.stage ? STAGES.indexOf(h.stage) : STAGES.length);
  return [...handlers].sort((a, b) => rank(a) - rank(b));
}

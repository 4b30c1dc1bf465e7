import type { Core } from './core.js';
import { byStage, HOLDING_STAGES, type InvalidationHandler } from './invalidation.js';

/** What one notification of another node's changes left to do, once its keys were dropped. */
export interface RemoteChanges {
  /**
   * The reloads of the stages a request waits for (HOLDING_STAGES: keyring, mount tables, audit table), in stage
   * order. Run before `reloadRest`.
   */
  reloadTables(): Promise<void>;
  /** The other reloads (leases, change events), in stage order. */
  reloadRest(): Promise<void>;
  /** Whether `reloadTables` has anything to do: requests arriving now wait for it (Core.joinCluster). */
  holdsRequests: boolean;
  /** Whether `reloadTables` loads every table (what changed was not named): once done, none is stale. */
  allTables: boolean;
}

const NOTHING: RemoteChanges = {
  reloadTables: async () => undefined,
  reloadRest: async () => undefined,
  holdsRequests: false,
  allTables: false,
};

/**
 * Keeps one node's caches true to a store that other nodes write: called with the barrier keys another node
 * committed (or undefined when it could not say which). Each key goes to the store that registered the longest
 * prefix of it (core.invalidation). Everything that can be dropped is dropped here, synchronously, so a request
 * handled after the call never sees the old value; the returned functions run the reloads in stage order
 * (keyring, mounts, audit, leases, events). Core.joinCluster runs each batch's table reloads after those of the
 * batches before it, and its other reloads after its own table reloads and the other reloads before them.
 */
export function dropRemoteChanges(core: Core, keys: string[] | undefined): RemoteChanges {
  core.forgetSealConfig();
  if (core.sealed) return NOTHING;
  if (keys === undefined) {
    dropEverything(core);
    return { ...inStages(core.invalidation.all(), (handler) => handler.reload?.()), allTables: true };
  }
  const batch = new Map<InvalidationHandler, string[]>();
  for (const key of keys) {
    core.barrier.invalidate(key);
    const owner = core.invalidation.owner(key);
    if (!owner) continue;
    owner.handler.drop?.(owner.key);
    const owned = batch.get(owner.handler) ?? [];
    owned.push(owner.key);
    batch.set(owner.handler, owned);
  }
  return { ...inStages([...batch.keys()], (handler) => handler.apply?.(batch.get(handler)!)), allTables: false };
}

/** The handlers' reloads in stage order, split where the stages a request waits for end (they come first). */
function inStages(
  handlers: InvalidationHandler[],
  run: (handler: InvalidationHandler) => Promise<void> | undefined,
): Omit<RemoteChanges, 'allTables'> {
  const holding = (h: InvalidationHandler): boolean => h.stage !== undefined && HOLDING_STAGES.has(h.stage);
  const ordered = byStage(handlers);
  const tables = ordered.filter(holding);
  const rest = ordered.filter((h) => !holding(h));
  const runAll = (list: InvalidationHandler[]) => async (): Promise<void> => {
    for (const handler of list) await run(handler);
  };
  return { reloadTables: runAll(tables), reloadRest: runAll(rest), holdsRequests: tables.length > 0 };
}

/** Loads the keyring, the mount tables and the audit table again, whatever changed (after a reload failed). */
export function reloadAllTables(core: Core): Promise<void> {
  return inStages(core.invalidation.all(), (handler) => handler.reload?.()).reloadTables();
}

/** Drops every cache at once, without waiting: what a node does when it cannot tell what changed. */
export function dropEverything(core: Core): void {
  core.barrier.invalidateAll();
  for (const handler of core.invalidation.all()) handler.dropAll?.();
}

/** Drops and then reloads, in one go (for callers that have nothing to order the reloads against). */
export async function applyRemoteChanges(core: Core, keys: string[] | undefined): Promise<void> {
  const changes = dropRemoteChanges(core, keys);
  await changes.reloadTables();
  await changes.reloadRest();
}

import type { Core } from './core.js';
import { byStage, HOLDING_STAGES, type InvalidationHandler } from './invalidation.js';

/** What one notification of another node's changes left to do, once its keys were dropped. */
export interface RemoteChanges {
  /** Runs the reloads, in stage order. */
  reload(): Promise<void>;
  /**
   * The batch changed what routes, decrypts or audits a request (a stage of HOLDING_STAGES, or keys unknown):
   * requests arriving now wait for the reload (Core.joinCluster, handleRequest).
   */
  holdsRequests: boolean;
}

/**
 * Keeps one node's caches true to a store that other nodes write: called with the barrier keys another node
 * committed (or undefined when it could not say which). Each key goes to the store that registered the longest
 * prefix of it (core.invalidation). Everything that can be dropped is dropped here, synchronously, so a request
 * handled after the call never sees the old value; the returned function runs the reloads in stage order
 * (keyring, mounts, audit, leases, events). Reloads of batches run one at a time, in order (Core.joinCluster).
 */
export function dropRemoteChanges(core: Core, keys: string[] | undefined): RemoteChanges {
  core.forgetSealConfig();
  if (core.sealed) return { reload: async () => undefined, holdsRequests: false };
  if (keys === undefined) {
    dropEverything(core);
    return { reload: () => reloadEverything(core), holdsRequests: true };
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
  const handlers = byStage([...batch.keys()]);
  return {
    reload: async () => {
      for (const handler of handlers) await handler.apply?.(batch.get(handler)!);
    },
    holdsRequests: handlers.some((h) => h.stage !== undefined && HOLDING_STAGES.has(h.stage)),
  };
}

/** Drops every cache at once, without waiting: what a node does when it cannot tell what changed. */
export function dropEverything(core: Core): void {
  core.barrier.invalidateAll();
  for (const handler of core.invalidation.all()) handler.dropAll?.();
}

async function reloadEverything(core: Core): Promise<void> {
  for (const handler of byStage(core.invalidation.all())) await handler.reload?.();
}

/** Drops and then reloads, in one go (for callers that have nothing to order the reloads against). */
export function applyRemoteChanges(core: Core, keys: string[] | undefined): Promise<void> {
  return dropRemoteChanges(core, keys).reload();
}

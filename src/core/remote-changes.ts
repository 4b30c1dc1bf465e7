import type { Core } from './core.js';
import { byStage, type InvalidationHandler } from './invalidation.js';

/**
 * Keeps one node's caches true to a store that other nodes write: called with the barrier keys another node
 * committed (or undefined when it could not say which). Each key goes to the store that registered the longest
 * prefix of it (core.invalidation). Everything that can be dropped is dropped here, synchronously, so a request
 * handled after the call never sees the old value; the returned function runs the reloads in stage order
 * (keyring, mounts, audit, leases, events). Reloads of batches run one at a time, in order (Core.joinCluster).
 */
export function dropRemoteChanges(core: Core, keys: string[] | undefined): () => Promise<void> {
  core.forgetSealConfig();
  if (core.sealed) return async () => undefined;
  if (keys === undefined) {
    dropEverything(core);
    return () => reloadEverything(core);
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
  return async () => {
    for (const handler of byStage([...batch.keys()])) await handler.apply?.(batch.get(handler)!);
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
  return dropRemoteChanges(core, keys)();
}

import type { Core } from './core.js';
import { byStage, type InvalidationHandler } from './invalidation.js';

/**
 * Keeps one node's caches true to a store that other nodes write: called with the barrier keys another node
 * committed (or undefined when it could not say which). Each key goes to the store that registered the longest
 * prefix of it (core.invalidation). Everything that can be dropped at once is dropped before the first await, so a
 * request that arrives after the notification never sees the old value; the reloads then run in stage order
 * (keyring, mounts, audit, leases, events). Batches are applied one at a time, in order (Core.joinCluster).
 */
export async function applyRemoteChanges(core: Core, keys: string[] | undefined): Promise<void> {
  core.forgetSealConfig();
  if (core.sealed) return;
  if (keys === undefined) return reloadEverything(core);
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
  for (const handler of byStage([...batch.keys()])) await handler.apply?.(batch.get(handler)!);
}

/** Drops every cache at once, without waiting: what a node does when it cannot tell what changed. */
export function dropEverything(core: Core): void {
  core.barrier.invalidateAll();
  for (const handler of core.invalidation.all()) handler.dropAll?.();
}

async function reloadEverything(core: Core): Promise<void> {
  dropEverything(core);
  for (const handler of byStage(core.invalidation.all())) await handler.reload?.();
}

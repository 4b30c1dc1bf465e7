import type { Core } from './core.js';

/**
 * Keeps one node's caches true to a store that other nodes write: called with the barrier keys another node
 * committed (or undefined when it could not say which). Everything that can be dropped at once is dropped before
 * the first await, so a request that arrives after the notification never sees the old value.
 */
export async function applyRemoteChanges(core: Core, keys: string[] | undefined): Promise<void> {
  core.forgetSealConfig();
  if (core.sealed) return;
  if (keys === undefined) return reloadEverything(core);
  let mountsChanged = false;
  let keyringChanged = false;
  let auditChanged = false;
  const leases: string[] = [];
  const events: string[] = [];
  for (const key of keys) {
    core.barrier.invalidate(key);
    if (key === 'core/mounts' || key === 'core/auth') mountsChanged = true;
    else if (key === 'core/keyring') keyringChanged = true;
    else if (key === 'core/audit') auditChanged = true;
    else if (key.startsWith('sys/token/id/')) core.tokens.forget(key.slice('sys/token/id/'.length));
    else if (key.startsWith('sys/policy/')) core.policies.clear();
    else if (key.startsWith('sys/expire/id/')) leases.push(key.slice('sys/expire/id/'.length));
    else if (key.startsWith('sys/events/')) events.push(key.slice('sys/events/'.length));
    else {
      const owner = core.mounts.byStorageKey(key);
      owner?.mounted.backend.invalidate?.(owner.relative);
    }
  }
  if (keyringChanged) await core.reloadKeyring();
  if (mountsChanged) await core.reloadMounts();
  if (auditChanged) await core.audit.load();
  for (const leaseId of leases) await core.expiration.refresh(leaseId);
  for (const event of events.sort()) await core.changes.ingest(event);
}

async function reloadEverything(core: Core): Promise<void> {
  core.barrier.invalidateAll();
  core.tokens.clear();
  core.policies.clear();
  await core.reloadKeyring();
  await core.reloadMounts();
  await core.audit.load();
  await core.expiration.reload();
}

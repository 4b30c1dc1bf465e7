import { badRequest } from '../../core/errors.js';
import type { Storage, StorageOp } from '../../core/storage.js';
import { getJson, jsonBytes } from '../../core/storage-view.js';
import { newKeyMeta, type KeyMeta } from './store.js';
import { nowIso } from './versioning.js';

/**
 * Upgrading a KV version 1 mount to version 2 in place (`kv enable-versioning`, or a tune to options.version=2):
 * every secret becomes version 1 of a versioned secret at the same path.
 *
 * Vault upgrades in the background and resumes after a restart. Cofre does the whole conversion as one storage
 * transaction that also writes the mount table with the new version (src/core/mount-table.ts `upgrade`), so the
 * store is never half-upgraded: a crash before the commit leaves the version 1 data and the version 1 mount
 * exactly as they were, a crash after it leaves a complete version 2 mount. Nothing needs resuming.
 */

/** Vault's answer while a mount is being upgraded (400: the client may retry in a moment). */
export const UPGRADING_MESSAGE =
  'Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will ' +
  'resume service shortly.';

/**
 * Lets requests through until the upgrade closes it; closing waits for the requests already inside, so the
 * upgrade reads every write that was acknowledged and no write lands after it has read.
 */
export class ServiceGate {
  private closed = false;
  private inside = 0;
  private drained: (() => void) | undefined;

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw badRequest(UPGRADING_MESSAGE);
    this.inside += 1;
    try {
      return await fn();
    } finally {
      this.inside -= 1;
      if (this.inside === 0) this.drained?.();
    }
  }

  /** Refuses new requests and resolves once none is running. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.inside === 0) return;
    await new Promise<void>((resolve) => (this.drained = resolve));
    this.drained = undefined;
  }

  /** The upgrade failed before its commit: the mount serves version 1 again. */
  open(): void {
    this.closed = false;
  }
}

/** Every key of a version 1 mount's storage (each one is a secret), depth first. */
async function allKeys(storage: Storage, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const key of await storage.list(prefix)) {
    if (key.endsWith('/')) out.push(...(await allKeys(storage, prefix + key)));
    else out.push(prefix + key);
  }
  return out;
}

/** The version 1 secrets of a mount, by path. Only called with the mount's gate closed, so nothing changes meanwhile. */
export async function readV1Secrets(storage: Storage): Promise<Map<string, Record<string, unknown>>> {
  const secrets = new Map<string, Record<string, unknown>>();
  for (const key of await allKeys(storage)) {
    const data = await getJson<Record<string, unknown>>(storage, key);
    if (data !== undefined) secrets.set(key, data);
  }
  return secrets;
}

/**
 * The storage operations, relative to the mount, that turn version 1 secrets into version 2 ones (layout in
 * store.ts). Every old key is deleted before any new one is written: a version 1 secret may be named like a
 * version 2 storage key ("metadata/app", "config"), and the operations apply in order within one transaction.
 */
export function v1ToV2Ops(secrets: Map<string, Record<string, unknown>>, now: string): StorageOp[] {
  const deletes: StorageOp[] = [];
  const puts: StorageOp[] = [];
  for (const [path, data] of secrets) {
    deletes.push({ op: 'delete', key: path });
    const meta: KeyMeta = newKeyMeta(path, now);
    // As Vault's upgrade: version 1, created now, by nobody in particular.
    meta.versions['1'] = { created_time: now, deletion_time: '', destroyed: false, created_by: null, deleted_by: null };
    meta.current_version = 1;
    puts.push({ op: 'put', key: `versions/${path}/1`, value: jsonBytes({ data }) });
    puts.push({ op: 'put', key: `metadata/${path}`, value: jsonBytes(meta) });
  }
  return [...deletes, ...puts];
}

/**
 * The version 1 backend's part of an upgrade to options.version "2" (other options need no conversion): stop serving, wait for the requests already running, read every
 * secret and return the operations that convert them. Service resumes (as version 1) if anything fails.
 */
export async function prepareV2Upgrade(
  storage: Storage,
  gate: ServiceGate,
  options: Record<string, string>,
): Promise<{ ops: StorageOp[]; cancel(): void } | undefined> {
  if (options.version !== '2') return undefined;
  await gate.close();
  try {
    const ops = v1ToV2Ops(await readV1Secrets(storage), nowIso());
    return { ops, cancel: () => gate.open() };
  } catch (err) {
    gate.open();
    throw err;
  }
}

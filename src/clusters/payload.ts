import { createHash } from 'node:crypto';
import type { Core } from '../core/core.js';
import { getJson } from '../core/storage-view.js';
import { readRole } from '../engines/database/path-roles.js';
import { KvState, KvStore } from '../engines/kv/store.js';
import {
  dataKeyProblem,
  objectKind,
  type DatabaseSource,
  type DeliveryDefinition,
  type KvSource,
} from './definitions.js';

/** What the agent opens: the protocol's payload (docs/multi-cluster.md, "Fetch"). */
export interface BundlePayload {
  objects: {
    kind: 'Secret' | 'ConfigMap';
    name: string;
    type?: string;
    immutable?: boolean;
    /** The in-pod delivery asked for (a Secret item has none): the agent writes a Secret until it has one. */
    mode?: 'env' | 'file';
    data: Record<string, string>;
  }[];
  rollout: { kind: string; name: string }[];
}

export type Resolved = { ok: true; bytes: Buffer; digest: string } | { ok: false; error: string };

/** A source that cannot be read: the message names the source, never a value. */
class SourceError extends Error {}

/** The current data of a KV secret (v1 or v2), read from the mount's storage as the engine stores it. */
async function readKv(core: Core, source: KvSource): Promise<Record<string, unknown>> {
  const mounted = core.mounts.get('mounts', `${source.mount}/`);
  const where = `kv secret "${source.mount}/${source.path}"`;
  if (!mounted || mounted.entry.type !== 'kv') throw new SourceError(`${where}: no KV mount at "${source.mount}/"`);
  const version = mounted.entry.options.version ?? '1';
  let data: Record<string, unknown> | undefined;
  if (version === '2') {
    const store = new KvStore(mounted.storage, new KvState());
    const meta = await store.getMeta(source.path);
    const current = meta?.versions[String(meta.current_version)];
    const deleted = current && current.deletion_time !== '' && Date.parse(current.deletion_time) <= Date.now();
    if (meta && current && !current.destroyed && !deleted)
      data = await store.getVersionData(source.path, meta.current_version);
  } else {
    data = await getJson<Record<string, unknown>>(mounted.storage, source.path);
  }
  if (!data) throw new SourceError(`${where} not found`);
  return data;
}

/**
 * A database source can be issued from: its mount is a database engine with the role. The credential itself is
 * issued per cluster when that cluster's bundle is sealed (database-source.ts), never here.
 */
async function checkDatabase(core: Core, source: DatabaseSource): Promise<void> {
  const mounted = core.mounts.get('mounts', `${source.mount}/`);
  const where = `database role "${source.mount}/${source.role}"`;
  if (!mounted || mounted.entry.type !== 'database') {
    throw new SourceError(`${where}: no database mount at "${source.mount}/"`);
  }
  if (!(await readRole(mounted.storage, source.role))) throw new SourceError(`${where} not found`);
}

const base64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8').toString('base64');

async function build(core: Core, definition: DeliveryDefinition): Promise<BundlePayload> {
  const objects: BundlePayload['objects'] = [];
  for (const item of definition.items) {
    const entries: [string, string][] = [];
    if (item.database) {
      // Filled per cluster (withCredentials): the delivery's digest does not change with one cluster's credential.
      await checkDatabase(core, item.database);
    } else if (item.kv) {
      const values = await readKv(core, item.kv);
      for (const key of item.kv.keys ?? Object.keys(values).sort()) {
        if (!Object.hasOwn(values, key)) {
          throw new SourceError(`kv secret "${item.kv.mount}/${item.kv.path}" has no key "${key}"`);
        }
        // A key Kubernetes refuses would make every agent refuse the whole bundle: no revision is made of it.
        const problem = dataKeyProblem(key);
        if (problem) {
          throw new SourceError(
            `kv secret "${item.kv.mount}/${item.kv.path}" has key "${key}", which cannot be a Kubernetes data key (${problem}): list the keys to deliver in kv.keys`,
          );
        }
        entries.push([key, base64(values[key])]);
      }
    } else {
      for (const [key, value] of Object.entries(item.literal ?? {})) entries.push([key, base64(value)]);
    }
    const data = Object.fromEntries(entries);
    objects.push({
      kind: objectKind(item.mode),
      name: item.name,
      ...(item.type ? { type: item.type } : {}),
      ...(item.immutable !== undefined ? { immutable: item.immutable } : {}),
      ...(item.mode === 'env' || item.mode === 'file' ? { mode: item.mode } : {}),
      data,
    });
  }
  return { objects, rollout: definition.rollout };
}

/** The payload of a delivery from its sources as they are now, or why it cannot be built. */
export async function resolvePayload(core: Core, definition: DeliveryDefinition): Promise<Resolved> {
  try {
    const bytes = Buffer.from(JSON.stringify(await build(core, definition)), 'utf8');
    return { ok: true, bytes, digest: createHash('sha256').update(bytes).digest('hex') };
  } catch (err) {
    if (err instanceof SourceError) return { ok: false, error: err.message };
    throw err;
  }
}

/**
 * A delivery's payload with each database item's Secret filled from one cluster's credentials (item name →
 * credential fields), as sealed for that cluster only.
 */
export function withCredentials(
  payload: Buffer,
  definition: DeliveryDefinition,
  credentials: Map<string, Record<string, string>>,
): Buffer {
  const parsed = JSON.parse(payload.toString('utf8')) as BundlePayload;
  for (const item of definition.items) {
    if (!item.database) continue;
    const object = parsed.objects.find((o) => o.kind === 'Secret' && o.name === item.name);
    const credential = credentials.get(item.name);
    if (!object || !credential) throw new Error(`no credential for item "${item.name}"`);
    const keys = item.database.keys ?? Object.keys(credential).sort();
    object.data = Object.fromEntries(keys.map((key) => [key, base64(credential[key] ?? '')]));
  }
  return Buffer.from(JSON.stringify(parsed), 'utf8');
}

/**
 * Whether a change-stream path ("secret/app/db") is one of the delivery's sources: a KV secret, or a database
 * role's definition (a role created or deleted changes whether the delivery can be built).
 */
export function usesSource(definition: DeliveryDefinition, changedPath: string): boolean {
  return definition.items.some(
    (item) =>
      (item.kv && `${item.kv.mount}/${item.kv.path}` === changedPath) ||
      (item.database && `${item.database.mount}/roles/${item.database.role}` === changedPath),
  );
}

/** Whether any item of the delivery is a database source (its bundles then differ per cluster). */
export function hasDatabaseSource(definition: DeliveryDefinition): boolean {
  return definition.items.some((item) => item.database !== undefined);
}

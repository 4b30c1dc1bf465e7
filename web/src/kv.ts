/**
 * The KV engine's paths, for both versions: v2 keeps versions under data/, metadata/, delete/, undelete/ and
 * destroy/; v1 keeps one value at the path itself.
 */
import { ApiError, call, list, type Json } from './api';

export interface KvMount {
  /** The mount path without its trailing slash ("secret"). */
  mount: string;
  version: 1 | 2;
}

export interface VersionInfo {
  version: number;
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

export interface SecretMetadata {
  currentVersion: number;
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  createdTime: string;
  updatedTime: string;
  customMetadata: Record<string, string>;
  versions: VersionInfo[];
}

export interface SecretVersion {
  data: Record<string, unknown> | null;
  version?: number;
  createdTime?: string;
  deletionTime?: string;
  destroyed?: boolean;
}

/** The mount serving a path, via sys/internal/ui/mounts (any token may ask about mounts it can use). */
export async function kvMount(mount: string): Promise<KvMount> {
  const res = await call('GET', `sys/internal/ui/mounts/${mount}`);
  const type = String(res?.data?.type ?? '');
  if (type !== 'kv' && type !== 'generic') throw new Error(`${mount}/ is a ${type} mount, not a KV store`);
  return { mount, version: String(res?.data?.options?.version ?? '1') === '2' ? 2 : 1 };
}

const under = (kv: KvMount, area: string, path: string): string =>
  kv.version === 2 ? `${kv.mount}/${area}/${path}` : `${kv.mount}/${path}`;

export const listSecrets = (kv: KvMount, folder: string): Promise<string[]> => list(under(kv, 'metadata', folder));

/** A v2 read of a deleted or destroyed version answers 404 with the version's metadata: that is not an error. */
async function readVersioned(path: string, version?: number): Promise<Json> {
  try {
    return await call('GET', path, version ? { query: { version: String(version) } } : {});
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.body?.data?.metadata) return err.body;
    throw err;
  }
}

function versionOf(res: Json, data: Record<string, unknown> | null): SecretVersion {
  const meta = res?.data?.metadata ?? {};
  return {
    data,
    version: Number(meta.version),
    createdTime: String(meta.created_time ?? ''),
    deletionTime: String(meta.deletion_time ?? ''),
    destroyed: meta.destroyed === true,
  };
}

/** A version's values: the one request that carries them to the browser (made when the user reveals or edits). */
export async function readSecret(kv: KvMount, path: string, version?: number): Promise<SecretVersion> {
  if (kv.version === 1) return { data: (await call('GET', `${kv.mount}/${path}`))?.data ?? {} };
  const res = await readVersioned(`${kv.mount}/data/${path}`, version);
  return versionOf(res, res?.data?.data ?? null);
}

/** A version's key names with the values left out (v2's subkeys/): what a page shows before anything is revealed. */
export async function readKeys(kv: KvMount, path: string, version?: number): Promise<SecretVersion> {
  const res = await readVersioned(`${kv.mount}/subkeys/${path}`, version);
  return versionOf(res, res?.data?.subkeys ?? null);
}

export async function readMetadata(kv: KvMount, path: string): Promise<SecretMetadata> {
  const d = (await call('GET', `${kv.mount}/metadata/${path}`))?.data ?? {};
  const versions = Object.entries((d.versions ?? {}) as Record<string, Record<string, unknown>>)
    .map(([v, info]) => ({
      version: Number(v),
      createdTime: String(info.created_time ?? ''),
      deletionTime: String(info.deletion_time ?? ''),
      destroyed: info.destroyed === true,
    }))
    .sort((a, b) => b.version - a.version);
  return {
    currentVersion: Number(d.current_version ?? 0),
    oldestVersion: Number(d.oldest_version ?? 0),
    maxVersions: Number(d.max_versions ?? 0),
    casRequired: d.cas_required === true,
    createdTime: String(d.created_time ?? ''),
    updatedTime: String(d.updated_time ?? ''),
    customMetadata: (d.custom_metadata ?? {}) as Record<string, string>,
    versions,
  };
}

/**
 * Writes a new version. On v2, `cas` is the version the user started from (0 for a new secret): if someone wrote
 * in between, the server refuses instead of the user silently overwriting their change.
 */
export async function writeSecret(
  kv: KvMount,
  path: string,
  data: Record<string, string>,
  cas: number | undefined,
): Promise<number | undefined> {
  if (kv.version === 1) {
    await call('PUT', `${kv.mount}/${path}`, { body: data });
    return undefined;
  }
  const body = cas === undefined ? { data } : { data, options: { cas } };
  const res = await call('POST', `${kv.mount}/data/${path}`, { body });
  return Number(res?.data?.version);
}

/** Sets (or, with null, removes) only the keys given, as a JSON merge patch on the latest version (v2). */
export async function patchSecret(kv: KvMount, path: string, changes: Record<string, string | null>, cas?: number) {
  const body = cas === undefined ? { data: changes } : { data: changes, options: { cas } };
  await call('PATCH', `${kv.mount}/data/${path}`, { body, mergePatch: true });
}

export type VersionAction = 'delete' | 'undelete' | 'destroy';

export async function changeVersions(kv: KvMount, path: string, action: VersionAction, versions: number[]) {
  await call(action === 'destroy' ? 'PUT' : 'POST', `${kv.mount}/${action}/${path}`, { body: { versions } });
}

/** Deletes the secret: on v2 its metadata and every version, for good; on v1 the one value. */
export async function deleteSecret(kv: KvMount, path: string): Promise<void> {
  await call('DELETE', under(kv, 'metadata', path));
}

import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import { ensureTrailingSlash, sanitizePath } from '../common.js';
import { CliError, usageError } from '../errors.js';
import { unwrap } from './status.js';

/** Where a `kv` key lives: its mount (with trailing slash), the engine version and the key inside the mount. */
export interface KvTarget {
  mountPath: string;
  version: 1 | 2;
  key: string;
}

export type KvPrefix = 'data' | 'metadata' | 'delete' | 'undelete' | 'destroy';

interface MountInfo {
  type?: string;
  options?: Record<string, string> | null;
}

function versionOf(info: MountInfo | undefined): 1 | 2 {
  return info?.options?.version === '2' || info?.type === 'kv-v2' ? 2 : 1;
}

/** The longest mount path (keys end in "/") that contains `path`. */
export function findMount(mounts: Record<string, unknown>, path: string): string | undefined {
  const target = ensureTrailingSlash(sanitizePath(path));
  let best: string | undefined;
  for (const mount of Object.keys(mounts)) {
    if (!mount.endsWith('/') || !target.startsWith(mount)) continue;
    if (!best || mount.length > best.length) best = mount;
  }
  return best;
}

/** An answer that is the server's (not a sealed server or a failed connection): the lookup may try the next way. */
function clientError(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status >= 400 && err.status < 500;
}

/**
 * Finds the mount and KV version of a path, as Vault's kv preflight does: first sys/internal/ui/mounts/PATH,
 * then the mount table (sys/mounts).
 * - A 404 from the first means a server without that endpoint: the path is taken as KV version 1, as Vault does.
 * - A 403 from it (no such mount, or the token may not see it, or the token is not valid) is reported unless the
 *   mount table can be read: a guess would send the request to the wrong API path (secret/app/db for the KV v2
 *   secret/data/app/db) and its error would name that path. When the mount table shows no mount for the path,
 *   the request still goes out as KV version 1 and the server's answer (no handler for the route) is shown.
 * Errors name the path the user gave; their URL names the API path that answered.
 */
export async function kvPreflight(client: VaultClient, path: string): Promise<{ mountPath: string; version: 1 | 2 }> {
  const clean = sanitizePath(path);
  const what = `finding the KV mount of ${clean}`;
  let refused: ApiError | undefined;
  try {
    const res = unwrap<MountInfo & { path?: string }>(
      // The CLI's own look-up: never wrapped, whatever -wrap-ttl asks of the command's request.
      await client.request('GET', `sys/internal/ui/mounts/${clean}`, { what, wrap: false }),
    );
    if (res && typeof res.path === 'string' && res.path !== '') {
      return { mountPath: ensureTrailingSlash(res.path), version: versionOf(res) };
    }
  } catch (err) {
    if (!clientError(err)) throw err;
    if (err.status !== 404) refused = err;
  }
  try {
    const mounts = unwrap<Record<string, MountInfo>>(await client.request('GET', 'sys/mounts', { what, wrap: false }));
    const mount = findMount(mounts, clean);
    if (mount) return { mountPath: mount, version: versionOf(mounts[mount]) };
  } catch (err) {
    if (!clientError(err)) throw err;
    if (refused) throw refused;
  }
  return { mountPath: '', version: 1 };
}

/** Resolves `kv` arguments: `-mount=M KEY`, or the older `MOUNT/KEY` form. */
export async function resolveKv(client: VaultClient, pathArg: string | undefined, mount?: string): Promise<KvTarget> {
  const path = sanitizePath(pathArg ?? '');
  if (mount !== undefined) {
    const mountPath = ensureTrailingSlash(sanitizePath(mount));
    if (mountPath === '') throw usageError('-mount must not be empty');
    const { version } = await kvPreflight(client, mountPath);
    return { mountPath, version, key: path };
  }
  if (path === '') throw usageError('Missing PATH (or use -mount=MOUNT KEY)');
  const { mountPath, version } = await kvPreflight(client, path);
  const key = mountPath && `${path}/`.startsWith(mountPath) ? path.slice(mountPath.length) : path;
  return { mountPath, version, key: mountPath ? key : path };
}

/** The API path of a key: MOUNT/PREFIX/KEY for KV v2 (Vault's addPrefixToKVPath), MOUNT/KEY for v1. */
export function kvApiPath(target: KvTarget, prefix: KvPrefix): string {
  const key = sanitizePath(target.key);
  if (target.version === 1) return sanitizePath(`${target.mountPath}${key}`);
  return sanitizePath(`${target.mountPath}${prefix}/${key}`);
}

/** Versions flags ("1,2" or repeated) as integers. */
export function parseVersions(values: string[] | undefined): number[] {
  return (values ?? []).map((v) => {
    if (!/^\d+$/.test(v)) throw usageError(`Invalid version "${v}"`);
    return Number(v);
  });
}

export function requireV2(target: KvTarget, what: string): void {
  if (target.version === 2) return;
  // No mount: the mount table had none for the path (or the server has no preflight endpoint).
  if (target.mountPath === '') throw new CliError(`${what}: found no KV version 2 mount for ${target.key}`);
  throw new CliError(`${what} is not supported on KV version 1 (mount ${target.mountPath})`);
}

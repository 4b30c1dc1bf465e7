import type { Storage, StorageOp } from '../../core/storage.js';
import { KeyLocks } from '../../core/key-locks.js';
import { getJson, jsonBytes, putJson } from '../../core/storage-view.js';

/**
 * The KV v2 storage layout, one mount's view:
 *   config                  mount-wide settings (KvConfig)
 *   metadata/<path>         a key's metadata and per-version bookkeeping (KeyMeta); storage list() under
 *                           "metadata/<prefix>" is exactly Vault's LIST metadata/<prefix>
 *   versions/<path>/<n>     the data of version n. "<path>/<digits>" splits uniquely at its last "/", so no two
 *                           (path, n) pairs share a key; versions are always named one by one, never by prefix.
 * A write stores the new version, the metadata and the trimming of old versions in one storage transaction, so a
 * crash never leaves metadata pointing at missing data or data no metadata knows about.
 */
export const CONFIG_KEY = 'config';
const metaKey = (path: string): string => `metadata/${path}`;
const versionKey = (path: string, version: number): string => `versions/${path}/${version}`;

/** Vault keeps 10 versions when neither the mount nor the key sets max_versions. */
export const DEFAULT_MAX_VERSIONS = 10;

export interface KvConfig {
  max_versions: number;
  cas_required: boolean;
  /** Seconds; 0 = unset, negative = disabled for every key (Vault stores -1s). */
  delete_version_after: number;
}

/** Who did what, as Vault's attribution fields (empty members left out, as Go's omitempty does). */
export interface Attribution {
  actor?: string;
  operation: string;
  entity_id?: string;
}

export interface VersionMeta {
  created_time: string;
  /** "" when the version is not (scheduled to be) deleted. */
  deletion_time: string;
  destroyed: boolean;
  created_by: Attribution | null;
  deleted_by: Attribution | null;
}

export interface KeyMeta {
  key: string;
  versions: Record<string, VersionMeta>;
  current_version: number;
  oldest_version: number;
  created_time: string;
  updated_time: string;
  max_versions: number;
  cas_required: boolean;
  /** Seconds; 0 = use the mount's setting. */
  delete_version_after: number;
  custom_metadata: Record<string, string> | null;
  last_updated_by: Attribution | null;
}

export function newKeyMeta(key: string, now = ''): KeyMeta {
  return {
    key,
    versions: {},
    current_version: 0,
    oldest_version: 0,
    created_time: now,
    updated_time: now,
    max_versions: 0,
    cas_required: false,
    delete_version_after: 0,
    custom_metadata: null,
    last_updated_by: null,
  };
}

export { KeyLocks };

/** State shared by every request to one mount: the key locks and a cache of the mount config. */
export class KvState {
  readonly locks = new KeyLocks();
  config: KvConfig | undefined;
}

export class KvStore {
  constructor(
    private readonly storage: Storage,
    private readonly state: KvState,
  ) {}

  /** Only this backend writes the config, so the cached copy is refreshed on every write and never stale. */
  async config(): Promise<KvConfig> {
    if (this.state.config) return { ...this.state.config };
    const stored = await getJson<Partial<KvConfig>>(this.storage, CONFIG_KEY);
    const config: KvConfig = { max_versions: 0, cas_required: false, delete_version_after: 0, ...stored };
    this.state.config = config;
    return { ...config };
  }

  async putConfig(config: KvConfig): Promise<void> {
    await putJson(this.storage, CONFIG_KEY, config);
    this.state.config = { ...config };
  }

  withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    return this.state.locks.run(path, fn);
  }

  getMeta(path: string): Promise<KeyMeta | undefined> {
    return getJson<KeyMeta>(this.storage, metaKey(path));
  }

  async getVersionData(path: string, version: number): Promise<Record<string, unknown> | undefined> {
    const stored = await getJson<{ data: Record<string, unknown> }>(this.storage, versionKey(path, version));
    return stored?.data;
  }

  async listMeta(prefix: string): Promise<string[]> {
    return this.storage.list(metaKey(prefix));
  }

  /** Metadata alone (soft delete, undelete, metadata writes). */
  saveMeta(meta: KeyMeta): Promise<void> {
    return putJson(this.storage, metaKey(meta.key), meta);
  }

  /** A new version, its metadata and the removal of trimmed versions, all or nothing. */
  saveNewVersion(meta: KeyMeta, data: Record<string, unknown>, trimmed: number[]): Promise<void> {
    const ops: StorageOp[] = [
      { op: 'put', key: versionKey(meta.key, meta.current_version), value: jsonBytes({ data }) },
      ...trimmed.map((n): StorageOp => ({ op: 'delete', key: versionKey(meta.key, n) })),
      { op: 'put', key: metaKey(meta.key), value: jsonBytes(meta) },
    ];
    return this.storage.transaction(ops);
  }

  /** Marks versions destroyed and drops their data in one step. */
  saveDestroyed(meta: KeyMeta, versions: number[]): Promise<void> {
    const ops: StorageOp[] = [
      { op: 'put', key: metaKey(meta.key), value: jsonBytes(meta) },
      ...versions.map((n): StorageOp => ({ op: 'delete', key: versionKey(meta.key, n) })),
    ];
    return this.storage.transaction(ops);
  }

  /** Removes the metadata and every version's data of a key. */
  deleteKey(meta: KeyMeta): Promise<void> {
    const ops: StorageOp[] = Object.keys(meta.versions).map((n) => ({
      op: 'delete',
      key: versionKey(meta.key, Number(n)),
    }));
    ops.push({ op: 'delete', key: metaKey(meta.key) });
    return this.storage.transaction(ops);
  }
}

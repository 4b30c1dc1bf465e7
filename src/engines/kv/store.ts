import { CofreError } from '../../core/errors.js';
import { retryOnConflict } from '../../core/conflict-retry.js';
import { changeJson } from '../../core/json-change.js';
import type { Storage, StorageOp } from '../../core/storage.js';
import { KeyLocks } from '../../core/key-locks.js';
import { getJson, jsonBytes, parseJson, parseJsonShared } from '../../core/storage-view.js';

/**
 * The KV v2 storage layout, one mount's view:
 *   config                  mount-wide settings (KvConfig)
 *   metadata/<path>         a key's metadata and per-version bookkeeping (KeyMeta); storage list() under
 *                           "metadata/<prefix>" is exactly Vault's LIST metadata/<prefix>
 *   versions/<path>/<n>     the data of version n. "<path>/<digits>" splits uniquely at its last "/", so no two
 *                           (path, n) pairs share a key; versions are always named one by one, never by prefix.
 * A write stores the new version, the metadata and the trimming of old versions in one storage transaction, so a
 * crash never leaves metadata pointing at missing data or data no metadata knows about.
 *
 * Every change is a read-modify-write of the metadata under the key's lock. The lock spans one process (its
 * threads included), not the other nodes of a shared store, so there each transaction also checks that the
 * metadata is still what was read: when another node changed it in between, nothing is written and the change is
 * made again on what that node wrote (withLock), instead of two writers both taking the same next version.
 */
export const CONFIG_KEY = 'config';

function withDefaults(stored: Partial<KvConfig> | undefined): KvConfig {
  return { max_versions: 0, cas_required: false, delete_version_after: 0, ...stored };
}
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
  /** Counts the config's invalidations, so that a read that raced one does not cache what it read before it. */
  private configChanges = 0;

  /** Another node changed the config: the next read reads it again. */
  forgetConfig(): void {
    this.configChanges++;
    this.config = undefined;
  }

  /** Caches `config` as read when the generation was `changes`, unless another node changed it since. */
  keepConfig(config: KvConfig, changes: number): void {
    if (changes === this.configChanges) this.config = config;
  }

  get configGeneration(): number {
    return this.configChanges;
  }

  /**
   * `otherWriters`: whether a process other than this one may change a key while this one holds its lock (nodes
   * sharing PostgreSQL); only then do writes carry the check of what they read, which costs SQLite's single
   * writer a lookup per write.
   */
  constructor(readonly otherWriters: () => boolean = () => true) {}
}

export class KvStore {
  /** The metadata each path had when this store (one request) read it, as stored: what its writes check. */
  private readonly readMeta = new Map<string, Uint8Array | null>();
  /**
   * What the store found in the keys of this store's last refused change (a check that failed because another
   * node changed the metadata): the next try makes its change on it instead of reading (withLock).
   */
  private refusedFound: ReadonlyMap<string, Uint8Array | null> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly state: KvState,
  ) {}

  /** Cached: refreshed by every write here, dropped when another node writes it (the backend's invalidate). */
  async config(): Promise<KvConfig> {
    if (this.state.config) return { ...this.state.config };
    const generation = this.state.configGeneration;
    const config = withDefaults(await getJson<Partial<KvConfig>>(this.storage, CONFIG_KEY));
    this.state.keepConfig(config, generation);
    return { ...config };
  }

  /**
   * Changes the settings `change` sets on the config as stored when the write commits (changeJson): two writes of
   * different settings, on two nodes at once, keep both (a cas_required turned on must not be turned off again by a
   * write of max_versions on a node that had not heard of it).
   */
  async changeConfig(change: (config: KvConfig) => void): Promise<void> {
    const generation = this.state.configGeneration;
    const written = await changeJson<Partial<KvConfig>>(this.storage, CONFIG_KEY, (stored) => {
      const config = withDefaults(stored);
      change(config);
      return config;
    });
    this.state.keepConfig(withDefaults(written), generation);
  }

  /**
   * Runs a change of `path` under its lock, again when its write lost a race with another node's change of the
   * same key: on the metadata that the refusal found, or reading anew. `fn` must read the metadata it changes
   * through getMeta and write nothing before its one save.
   */
  withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    return this.state.locks.run(path, () =>
      retryOnConflict(
        (refused) => {
          this.refusedFound = refused?.found();
          return fn();
        },
        () => new CofreError(409, 'the secret kept changing on other nodes while this change was made: try again'),
        { usesFound: true },
      ).finally(() => {
        // What a refusal found is for the tries of this change alone.
        this.refusedFound = undefined;
      }),
    );
  }

  async getMeta(path: string): Promise<KeyMeta | undefined> {
    const key = metaKey(path);
    const found = this.refusedFound;
    const stored = found?.has(key) ? (found.get(key) ?? undefined) : await this.storage.get(key);
    this.readMeta.set(path, stored ?? null);
    return stored === undefined ? undefined : parseJson<KeyMeta>(stored);
  }

  /** Whether `path` has metadata (the existence check of a write): nothing is parsed. */
  async hasMeta(path: string): Promise<boolean> {
    return (await this.storage.get(metaKey(path))) !== undefined;
  }

  /**
   * The metadata of `path` for a caller that only looks at it (reads): frozen and shared with every other reader
   * of the same stored bytes. It records nothing for a later write's check.
   */
  async viewMeta(path: string): Promise<Readonly<KeyMeta> | undefined> {
    const stored = await this.storage.get(metaKey(path));
    return stored === undefined ? undefined : parseJsonShared<KeyMeta>(stored);
  }

  /** A version's data to answer with, never to change: frozen and shared like viewMeta's. */
  async viewVersionData(path: string, version: number): Promise<Readonly<Record<string, unknown>> | undefined> {
    const stored = await this.storage.get(versionKey(path, version));
    return stored === undefined ? undefined : parseJsonShared<{ data: Record<string, unknown> }>(stored).data;
  }

  /** The check that the metadata of `path` is still what getMeta read (none if it was not read). */
  private metaCheck(path: string): StorageOp[] {
    const read = this.readMeta.get(path);
    if (read === undefined || !this.state.otherWriters()) return [];
    return [{ op: 'check', key: metaKey(path), value: read }];
  }

  async getVersionData(path: string, version: number): Promise<Record<string, unknown> | undefined> {
    const stored = await getJson<{ data: Record<string, unknown> }>(this.storage, versionKey(path, version));
    return stored?.data;
  }

  async listMeta(prefix: string): Promise<string[]> {
    return this.storage.list(metaKey(prefix));
  }

  /** Metadata alone (soft delete, undelete, metadata writes). */
  async saveMeta(meta: KeyMeta): Promise<void> {
    await this.storage.transaction([
      ...this.metaCheck(meta.key),
      { op: 'put', key: metaKey(meta.key), value: jsonBytes(meta) },
    ]);
  }

  /** A new version, its metadata and the removal of trimmed versions, all or nothing. */
  async saveNewVersion(meta: KeyMeta, data: Record<string, unknown>, trimmed: number[]): Promise<void> {
    const ops: StorageOp[] = [
      ...this.metaCheck(meta.key),
      { op: 'put', key: versionKey(meta.key, meta.current_version), value: jsonBytes({ data }) },
      ...trimmed.map((n): StorageOp => ({ op: 'delete', key: versionKey(meta.key, n) })),
      { op: 'put', key: metaKey(meta.key), value: jsonBytes(meta) },
    ];
    await this.storage.transaction(ops);
  }

  /** Marks versions destroyed and drops their data in one step. */
  async saveDestroyed(meta: KeyMeta, versions: number[]): Promise<void> {
    const ops: StorageOp[] = [
      ...this.metaCheck(meta.key),
      { op: 'put', key: metaKey(meta.key), value: jsonBytes(meta) },
      ...versions.map((n): StorageOp => ({ op: 'delete', key: versionKey(meta.key, n) })),
    ];
    await this.storage.transaction(ops);
  }

  /** Removes the metadata and every version's data of a key. */
  async deleteKey(meta: KeyMeta): Promise<void> {
    const ops: StorageOp[] = Object.keys(meta.versions).map((n) => ({
      op: 'delete',
      key: versionKey(meta.key, Number(n)),
    }));
    ops.push({ op: 'delete', key: metaKey(meta.key) });
    await this.storage.transaction([...this.metaCheck(meta.key), ...ops]);
  }
}

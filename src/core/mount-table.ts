import { randomUUID } from 'node:crypto';
import type { InvalidationHandler, InvalidationRegistry } from './invalidation.js';
import type { Backend, BackendFactory, PathRecord, SystemView } from './backend.js';
import { CUBBYHOLE_PATH, CUBBYHOLE_TYPE } from './cubbyhole.js';
import { retryOnConflict } from './conflict-retry.js';
import { badRequest, CofreError } from './errors.js';
import { OneAtATime } from './one-at-a-time.js';
import { getOwn } from './own-keys.js';
import type { Storage, StorageOp } from './storage.js';
import { jsonBytes, parseJson, StorageView } from './storage-view.js';

export interface MountConfig {
  default_lease_ttl: number;
  max_lease_ttl: number;
}

export interface MountEntry {
  path: string; // with trailing slash; auth mounts without the "auth/" prefix, as Vault lists them
  type: string;
  description: string;
  accessor: string;
  uuid: string;
  config: MountConfig;
  options: Record<string, string>;
  local: boolean;
  seal_wrap: boolean;
}

export type TableName = 'mounts' | 'auth';

export interface CompiledPath {
  regex: RegExp;
  record: PathRecord;
}

export interface Mounted {
  entry: MountEntry;
  table: TableName;
  /** Full routing prefix, e.g. "secret/" or "auth/token/". */
  prefix: string;
  backend: Backend;
  paths: CompiledPath[];
  storage: StorageView;
}

const TABLE_KEY: Record<TableName, string> = { mounts: 'core/mounts', auth: 'core/auth' };
const STORAGE_PREFIX: Record<TableName, string> = { mounts: 'logical/', auth: 'auth/' };
const RESERVED = ['sys/', 'auth/', 'cubbyhole/', 'identity/'];

export function compilePaths(backend: Backend): CompiledPath[] {
  return backend.paths.map((record) => ({ regex: new RegExp(`^(?:${record.pattern})$`), record }));
}

/**
 * The mount table: which backend serves which path prefix. Persisted through the barrier; routing is a
 * longest-prefix match over the mounted prefixes.
 */
export class MountTable {
  private readonly mounted = new Map<string, Mounted>();
  /** Built-in backends (sys/) survive seal and reload: they serve sys/unseal while sealed. */
  private readonly builtins = new Map<string, Mounted>();
  /** Whether this node runs background jobs: backends mounted meanwhile start theirs at once. */
  private background = false;
  /**
   * Changes of the tables run one at a time: each persists the whole table, so a tune persisting while a move
   * awaits its own write would otherwise put the old path back in storage.
   */
  private readonly changes = new OneAtATime();
  /**
   * Each table as this node last read or wrote it. A change commits only if the store still holds that: `changes`
   * keeps this node's changes in turn, not another node's, and a table written over by a node that had not heard
   * of a mount made elsewhere lost it (two automations enabling engines through different nodes at once).
   */
  private readonly stored: Record<TableName, Uint8Array | null> = { mounts: null, auth: null };
  /** Route prefixes of mounts whose data is being converted (a second tune must wait for the first). */
  private readonly upgrading = new Set<string>();

  constructor(
    private readonly barrier: Storage,
    private readonly factories: { mounts: Record<string, BackendFactory>; auth: Record<string, BackendFactory> },
    private readonly systemView: (entry: MountEntry) => SystemView,
  ) {}

  /**
   * Builds every mount from the stored tables (on unseal). One change at a time with the others: a reload another
   * node asks for meanwhile (the barrier is open, so its notifications are heard) runs once the load is done and
   * reads the tables after it, instead of swapping in its tables while the load goes on adding mounts from what it
   * read before (a mount disabled elsewhere came back, its first backend never stopped).
   */
  async load(defaults: { mounts: MountEntry[]; auth: MountEntry[] }): Promise<void> {
    // Two nodes loading a new store at once write their defaults (each with UUIDs of its own) once: the second
    // commit is refused, and its node loads again what the first wrote.
    return this.changes.run(() => retryOnConflict(() => this.loadNow(defaults), changedElsewhere));
  }

  private async loadNow(defaults: { mounts: MountEntry[]; auth: MountEntry[] }): Promise<void> {
    // The backends are built again below: the old ones release their pools and timers first.
    this.background = false;
    await Promise.all([...this.mounted.values()].map((m) => m.backend.stop?.()));
    this.mounted.clear();
    for (const table of ['mounts', 'auth'] as const) {
      let entries = await this.readTable(table);
      if (!entries) {
        // A new store: write the defaults once, so an operator who later disables one keeps it disabled.
        entries = defaults[table];
        await this.commitTable(table, entries);
      }
      if (table === 'mounts' && !entries.some((e) => e.type === CUBBYHOLE_TYPE)) {
        // Every server has a cubbyhole, as in Vault: added to a store that has none (a new one, or one from
        // before the engine existed), and never removed.
        entries = [...entries, cubbyholeEntry()];
        await this.commitTable(table, entries);
      }
      for (const entry of entries) await this.activate(table, entry);
    }
  }

  /**
   * Another node changed a table: the new tables are built aside and swapped in at once, so a request routed
   * meanwhile never finds a mount missing. A mount whose entry did not change keeps its backend (and its pools and
   * timers); only those added or changed are built, and only those removed or replaced are stopped.
   */
  async reload(): Promise<void> {
    return this.changes.run(() => this.reloadNow());
  }

  private async reloadNow(): Promise<void> {
    const next = new Map<string, Mounted>();
    const kept = new Set<Mounted>();
    for (const table of ['mounts', 'auth'] as const) {
      const entries = (await this.readTable(table)) ?? this.entries(table);
      for (const entry of entries) {
        const prefix = routePrefix(table, entry.path);
        const current = this.mounted.get(prefix);
        const same = current?.table === table && JSON.stringify(current.entry) === JSON.stringify(entry);
        if (same) kept.add(current);
        next.set(prefix, same ? current : await this.build(table, entry));
      }
    }
    const gone = [...this.mounted.values()].filter((m) => !kept.has(m));
    this.mounted.clear();
    for (const [prefix, mounted] of next) this.mounted.set(prefix, mounted);
    if (this.background) for (const mounted of next.values()) if (!kept.has(mounted)) mounted.backend.start?.();
    // Not awaited: requests held for this reload (Core.requestHold) go on once the new tables are in place,
    // while a removed backend's stop waits for what it still serves (a database pool's requests, say).
    void Promise.allSettled(gone.map((m) => m.backend.stop?.()));
  }

  /**
   * Runs a change of the tables after every other change of this node. Its commit is refused when another node
   * changed the table since this node read it: the tables are then read again (as a reload does, which also undoes
   * what the refused change did in memory) and the change is decided again on them, so that a mount made elsewhere
   * meanwhile is kept, and a path taken there meanwhile is refused here.
   */
  private change<T>(step: () => Promise<T>): Promise<T> {
    return this.changes.run(() =>
      retryOnConflict(async (refused) => {
        if (refused) await this.reloadNow();
        return step();
      }, changedElsewhere),
    );
  }

  /** Starts every backend's background jobs (rotation schedules), and those of backends mounted later. */
  startBackground(): void {
    this.background = true;
    for (const mounted of this.mounted.values()) mounted.backend.start?.();
  }

  /** Stops the jobs and releases what backends hold (database pools with their credentials), leader or not. */
  async stopBackground(): Promise<void> {
    this.background = false;
    await Promise.all([...this.mounted.values()].map((m) => m.backend.stop?.()));
  }

  /** The mount whose storage holds a barrier key ("logical/<uuid>/…"), and the key relative to that storage. */
  byStorageKey(key: string): { mounted: Mounted; relative: string } | undefined {
    for (const mounted of this.mounted.values()) {
      if (key.startsWith(mounted.storage.prefix))
        return { mounted, relative: key.slice(mounted.storage.prefix.length) };
    }
    return undefined;
  }

  /**
   * Declares the keys the mount table owns: its two tables (another node mounted, unmounted or tuned:
   * `reloadTables` builds every backend again) and the engines' storage (the engine owning a key forgets what it
   * cached of it).
   */
  registerInvalidation(registry: InvalidationRegistry, reloadTables: () => Promise<void>): void {
    const tables: InvalidationHandler = { stage: 'mounts', apply: reloadTables, reload: reloadTables };
    for (const table of ['mounts', 'auth'] as const) {
      registry.on(TABLE_KEY[table], tables);
      const prefix = STORAGE_PREFIX[table];
      registry.on(prefix, {
        drop: (key) => {
          const owner = this.byStorageKey(prefix + key);
          owner?.mounted.backend.invalidate?.(owner.relative);
        },
      });
    }
  }

  /** Registers a backend that is built in and never persisted (the system backend). */
  addBuiltin(prefix: string, entry: MountEntry, backend: Backend, storage: StorageView): void {
    this.builtins.set(prefix, { entry, table: 'mounts', prefix, backend, paths: compilePaths(backend), storage });
  }

  static newEntry(path: string, type: string, fields: Partial<MountEntry> = {}): MountEntry {
    return {
      path: normalizeMountPath(path),
      type,
      description: fields.description ?? '',
      accessor: `${type}_${randomUUID().slice(0, 8)}`,
      uuid: randomUUID(),
      config: { default_lease_ttl: 0, max_lease_ttl: 0, ...fields.config },
      options: fields.options ?? {},
      local: fields.local ?? false,
      seal_wrap: fields.seal_wrap ?? false,
    };
  }

  async mount(table: TableName, entry: MountEntry): Promise<void> {
    return this.change(() => this.mountNow(table, entry));
  }

  private async mountNow(table: TableName, entry: MountEntry): Promise<void> {
    const prefix = routePrefix(table, entry.path);
    if (table === 'mounts' && RESERVED.some((r) => prefix.startsWith(r))) {
      throw badRequest(`cannot mount at reserved path "${entry.path}"`);
    }
    const existing = this.conflictWith(prefix);
    if (existing !== undefined) throw badRequest(`path is already in use at ${existing}`);
    if (!getOwn(this.factories[table], entry.type)) throw badRequest(`plugin not found in the catalog: ${entry.type}`);
    if (entry.type === CUBBYHOLE_TYPE) throw badRequest(`mount type of "${CUBBYHOLE_TYPE}" is not mountable`);
    await this.activate(table, entry);
    await this.persist(table);
  }

  async unmount(table: TableName, path: string): Promise<void> {
    return this.change(() => this.unmountNow(table, path));
  }

  private async unmountNow(table: TableName, path: string): Promise<void> {
    const prefix = routePrefix(table, normalizeMountPath(path));
    const mounted = this.mounted.get(prefix);
    if (!mounted || mounted.table !== table) return; // Vault answers 204 for an absent mount
    assertRemovable(mounted);
    await mounted.backend.stop?.();
    const keys = await listRecursive(mounted.storage, '');
    await mounted.storage.transaction(keys.map((key) => ({ op: 'delete' as const, key })));
    this.mounted.delete(prefix);
    await this.persist(table);
  }

  /**
   * Moves a mount to another path of the same table (sys/remount). Its storage is keyed by its UUID, so its data
   * stays where it is and only the table changes. The new table is persisted before anything changes in memory:
   * if the write fails, the mount is still where it was, with its data, on this node and in storage. Table changes
   * run one at a time (`changes`), so no mount can take the new path meanwhile.
   */
  async remount(table: TableName, from: string, to: string): Promise<Mounted> {
    return this.change(() => this.remountNow(table, from, to));
  }

  private async remountNow(table: TableName, from: string, to: string): Promise<Mounted> {
    const fromPrefix = routePrefix(table, normalizeMountPath(from));
    const toPath = normalizeMountPath(to);
    const toPrefix = routePrefix(table, toPath);
    const mounted = this.mounted.get(fromPrefix);
    if (!mounted || mounted.table !== table) throw badRequest(`no matching mount at "${fromPrefix}"`);
    const conflict = this.conflictWith(toPrefix);
    if (conflict !== undefined) throw badRequest(`path already in use at "${conflict}"`);
    const entries = this.entries(table).map((e) => (e === mounted.entry ? { ...e, path: toPath } : e));
    await this.commitTable(table, entries);
    // Persisted: from here on nothing awaits, so no request sees the mount at both paths or at neither. The
    // object is moved, not copied: a request routed before the move and still running (a login about to issue
    // its token) names the new path from now on, so nothing it leaves behind sits under the old one.
    mounted.entry.path = toPath;
    mounted.prefix = toPrefix;
    this.mounted.delete(fromPrefix);
    this.mounted.set(toPrefix, mounted);
    return mounted;
  }

  /** The mounted prefix a mount at prefix would overlap (the same, under or above it), if any: Vault's MountConflict. */
  conflictWith(prefix: string): string | undefined {
    for (const existing of [...this.mounted.keys(), ...this.builtins.keys()]) {
      if (existing.startsWith(prefix) || prefix.startsWith(existing)) return existing;
    }
    return undefined;
  }

  /**
   * Changes a mount's entry. When the options change and the backend converts its data for them (KV version 1 to
   * 2), the conversion and the new mount table are one storage transaction, and the backend is built anew: a
   * crash leaves either the old data under the old entry or the new data under the new one. Returns whether the
   * mount was upgraded.
   */
  async tune(table: TableName, path: string, change: (entry: MountEntry) => void): Promise<boolean> {
    this.tunable(table, path); // refused at once rather than after the upgrade under way
    return this.change(() => this.tuneNow(table, path, change));
  }

  private tunable(table: TableName, path: string): Mounted {
    const mounted = this.get(table, path);
    if (!mounted) throw badRequest(`no mount at "${normalizeMountPath(path)}"`);
    if (this.upgrading.has(mounted.prefix)) throw badRequest(`the mount at "${mounted.entry.path}" is being upgraded`);
    return mounted;
  }

  private async tuneNow(table: TableName, path: string, change: (entry: MountEntry) => void): Promise<boolean> {
    const mounted = this.tunable(table, path);
    const next = structuredClone(mounted.entry);
    change(next);
    const optionsChanged = JSON.stringify(next.options) !== JSON.stringify(mounted.entry.options);
    if (!optionsChanged || !mounted.backend.prepareUpgrade) {
      Object.assign(mounted.entry, next);
      await this.persist(table);
      return false;
    }
    this.upgrading.add(mounted.prefix);
    try {
      return await this.upgrade(mounted, next);
    } finally {
      this.upgrading.delete(mounted.prefix);
    }
  }

  private async upgrade(mounted: Mounted, next: MountEntry): Promise<boolean> {
    const upgrade = await mounted.backend.prepareUpgrade!(next.options);
    const table = mounted.table;
    if (!upgrade) {
      Object.assign(mounted.entry, next);
      await this.persist(table);
      return false;
    }
    const entries = this.entries(table).map((entry) => (entry === mounted.entry ? next : entry));
    try {
      await this.commitTable(
        table,
        entries,
        upgrade.ops.map((op) => ({ ...op, key: mounted.storage.prefix + op.key })),
      );
    } catch (err) {
      upgrade.cancel();
      throw err;
    }
    // Committed: the old backend keeps refusing what was routed to it; new requests reach the new one.
    await mounted.backend.stop?.();
    await this.activate(table, next);
    return true;
  }

  get(table: TableName, path: string): Mounted | undefined {
    const mounted = this.mounted.get(routePrefix(table, normalizeMountPath(path)));
    return mounted?.table === table ? mounted : undefined;
  }

  entries(table: TableName): MountEntry[] {
    return [...this.mounted.values()].filter((m) => m.table === table).map((m) => m.entry);
  }

  all(): Mounted[] {
    return [...this.builtins.values(), ...this.mounted.values()];
  }

  /** The mount serving path, by longest prefix. Paths equal to a mount without its slash route there too. */
  match(path: string): Mounted | undefined {
    let best: Mounted | undefined;
    for (const mounted of this.all()) {
      const prefix = mounted.prefix;
      if ((path.startsWith(prefix) || path + '/' === prefix) && (!best || prefix.length > best.prefix.length)) {
        best = mounted;
      }
    }
    return best;
  }

  private async activate(table: TableName, entry: MountEntry): Promise<void> {
    const mounted = await this.build(table, entry);
    this.mounted.set(mounted.prefix, mounted);
    if (this.background) mounted.backend.start?.();
  }

  private async build(table: TableName, entry: MountEntry): Promise<Mounted> {
    const factory = getOwn(this.factories[table], entry.type);
    if (!factory) throw new Error(`no backend of type ${entry.type} for mount ${entry.path}`);
    const prefix = routePrefix(table, entry.path);
    const storage = new StorageView(this.barrier, `${STORAGE_PREFIX[table]}${entry.uuid}/`);
    const system = this.systemView(entry);
    const backend = await factory({ storage, mountPoint: prefix, options: entry.options, system });
    return { entry, table, prefix, backend, paths: compilePaths(backend), storage };
  }

  private async persist(table: TableName): Promise<void> {
    await this.commitTable(table, this.entries(table));
  }

  /** A table as stored (undefined: none yet), kept as read for the next change's check. */
  private async readTable(table: TableName): Promise<MountEntry[] | undefined> {
    const stored = (await this.barrier.get(TABLE_KEY[table])) ?? null;
    this.stored[table] = stored;
    return stored ? parseJson<MountEntry[]>(stored) : undefined;
  }

  /**
   * Writes a table (with `ops`, in one transaction) if the store still holds it as this node last read or wrote
   * it; StorageConflictError otherwise, for `change` to read it again.
   */
  private async commitTable(table: TableName, entries: MountEntry[], ops: StorageOp[] = []): Promise<void> {
    const value = jsonBytes(entries);
    await this.barrier.transaction([
      { op: 'check', key: TABLE_KEY[table], value: this.stored[table] },
      ...ops,
      { op: 'put', key: TABLE_KEY[table], value },
    ]);
    this.stored[table] = value;
  }
}

const changedElsewhere = (): Error =>
  new CofreError(409, 'the mount table kept changing on other nodes while this change was made: try again');

/** The cubbyhole's mount entry, marked local as Vault marks it (not replicated between clusters). */
function cubbyholeEntry(): MountEntry {
  return MountTable.newEntry(CUBBYHOLE_PATH, CUBBYHOLE_TYPE, {
    description: 'per-token private secret storage',
    local: true,
  });
}

/** The system backend, the token method and the cubbyhole are always there: none of them can be disabled. */
export function assertRemovable(mounted: Mounted): void {
  if (mounted.entry.type === 'system' || mounted.entry.type === CUBBYHOLE_TYPE || mounted.prefix === 'auth/token/') {
    throw badRequest(`cannot unmount "${mounted.entry.path}"`);
  }
}

export function normalizeMountPath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw badRequest(`invalid mount path "${path}"`);
  }
  return `${trimmed}/`;
}

function routePrefix(table: TableName, path: string): string {
  return table === 'auth' ? `auth/${path}` : path;
}

async function listRecursive(storage: Storage, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await storage.list(prefix)) {
    if (key.endsWith('/')) out.push(...(await listRecursive(storage, prefix + key)));
    else out.push(prefix + key);
  }
  return out;
}

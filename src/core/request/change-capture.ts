import type { Operation, PathRecord, Request, Response } from '../backend.js';
import type { ChangeEvent, NewChange, StagedChange } from '../change-log.js';
import type { Core } from '../core.js';
import type { Mounted } from '../mount-table.js';
import { isStorageConflict, type Committed, type Storage, type StorageOp } from '../storage.js';
import { StorageView } from '../storage-view.js';

const CHANGES = new Set<Operation>(['create', 'update', 'patch', 'delete']);

/**
 * A change of a secret and its change-log entry are one commit: the entry rides on the handler's first write, so a
 * crash keeps both or neither (a second commit after the write could be lost and the change never announced).
 *
 * `captureChange` runs before the handler. When the request may change a secret, it hands the handler a storage
 * that adds the entry to its first write; `reportChange` runs after, once the answer stands.
 */
export interface ChangeCapture {
  readonly change: Omit<NewChange, 'version'>;
  /** The entry that rode on the handler's first write; undefined while the handler has not written. */
  committed: Promise<ChangeEvent> | undefined;
}

/** Starts capturing the change a request may make; undefined when the request cannot change a secret. */
export function captureChange(
  core: Core,
  mounted: Mounted,
  requestPath: string,
  record: PathRecord,
  request: Request,
): ChangeCapture | undefined {
  // Reads, auth methods and the system backend are not changes of a secret.
  if (!CHANGES.has(request.operation)) return undefined;
  if (mounted.table !== 'mounts' || mounted.entry.type === 'system') return undefined;
  const scope = record.changeScope ? record.changeScope(request) : { path: request.path, aclPath: request.path };
  if (!scope) return undefined;
  const capture: ChangeCapture = {
    change: {
      kind: scope.kind ?? (request.operation === 'delete' ? 'delete' : 'write'),
      path: mounted.prefix + scope.path,
      aclPath: mounted.prefix + scope.aclPath,
      requestPath,
    },
    committed: undefined,
  };
  request.change = {};
  const log = core.changes.storage;
  const mount = request.storage;
  // Both are views of the barrier for every engine today; one that is not gets its entry in a commit of its own.
  if (mount instanceof StorageView && log instanceof StorageView && mount.sharesStoreWith(log)) {
    request.storage = new ChangeCarryingStorage(mount, log, capture, () => {
      const version = request.change?.version;
      return core.changes.stage({ ...capture.change, ...(version !== undefined ? { version } : {}) });
    });
  }
  return capture;
}

/**
 * Announces a successful change on the change stream (never its value): waits for the entry that rode on the
 * handler's write, or appends one now when the handler wrote nothing (a delete of nothing is still reported).
 */
export async function reportChange(
  core: Core,
  capture: ChangeCapture | undefined,
  response: Response | undefined,
): Promise<void> {
  if (!capture) return;
  // A failed request that wrote anyway keeps its entry: a change may be announced twice, never not at all.
  if ((response?.status ?? 200) >= 400) return;
  if (capture.committed) {
    await capture.committed;
    return;
  }
  const version = response?.data?.version;
  await core.changes.append({ ...capture.change, ...(typeof version === 'number' ? { version } : {}) });
}

/** A mount's storage whose first write also commits the request's change-log entry. */
class ChangeCarryingStorage implements Storage {
  constructor(
    private readonly mount: StorageView,
    private readonly log: StorageView,
    private readonly capture: ChangeCapture,
    private readonly stage: () => StagedChange,
  ) {}

  get(key: string): Promise<Uint8Array | undefined> {
    return this.mount.get(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.mount.list(prefix);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.transaction([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<void> {
    await this.transaction([{ op: 'delete', key }]);
  }

  transaction(ops: StorageOp[]): Promise<Committed> {
    if (ops.length === 0 || this.capture.committed) return this.mount.transaction(ops);
    const entry = this.stage();
    const persisted = this.mount.transactionWith(ops, this.log, entry.ops);
    const committed = entry.publish(persisted);
    // A failed commit reaches the handler through `persisted`; this copy of the failure must not end the process.
    committed.catch(() => undefined);
    this.capture.committed = committed;
    // A check that failed wrote nothing, the entry neither: the handler's next try (src/engines/kv/store.ts) must
    // carry an entry of its own. Undone before the handler hears of the failure.
    // The keys the store gave are the log's, not the handler's business.
    return persisted.then(
      () => undefined,
      (err: unknown) => {
        if (isStorageConflict(err) && this.capture.committed === committed) this.capture.committed = undefined;
        throw err;
      },
    );
  }

  async close(): Promise<void> {}
}

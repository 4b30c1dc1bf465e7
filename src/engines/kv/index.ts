import type { BackendFactory, PathRecord, Request, Response } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { configPaths } from './path-config.js';
import { dataPaths } from './path-data.js';
import { deletePaths } from './path-delete.js';
import { destroyPaths } from './path-destroy.js';
import { metadataPaths } from './path-metadata.js';
import { subkeysPaths } from './path-subkeys.js';
import { undeletePaths } from './path-undelete.js';
import { invalidPathResponse, notFoundWithWarning, ROOT_WARNING } from './request.js';
import { CONFIG_KEY, KvState } from './store.js';
import { prepareV2Upgrade, ServiceGate } from './upgrade.js';
import { v1Paths } from './v1.js';

const V1_HELP =
  'Key/value secret storage, version 1: each path holds one secret, stored as written, without versions. ' +
  'Upgrade to version 2 in place with `kv enable-versioning`.';
const V2_HELP =
  'Versioned key/value secret storage: each secret keeps its last versions (data/), with metadata (metadata/), ' +
  'check-and-set, soft deletes that can be undone (delete/, undelete/) and permanent ones (destroy/).';

/**
 * The KV secrets engine. The mount option "version" picks the flavour: "1" (or none, as in Vault's `kv`) is the
 * unversioned pass-through store, "2" the versioned store with metadata, check-and-set and soft deletes.
 */
export const kvFactory: BackendFactory = (ctx) => {
  const version = ctx.options.version ?? '1';
  if (version === '' || version === '1') {
    const gate = new ServiceGate();
    return {
      type: 'kv',
      help: V1_HELP,
      paths: v1Paths(gate),
      prepareUpgrade: (options) => prepareV2Upgrade(ctx.storage, gate, options),
    };
  }
  if (version === '2') {
    const state = new KvState(() => ctx.system.otherWriters?.() ?? true);
    // The config is cached per mount; a node sharing the store may change it.
    const invalidate = (key: string): void => {
      if (key === CONFIG_KEY) state.forgetConfig();
    };
    return { type: 'kv', help: V2_HELP, paths: v2Paths(state), invalidate };
  }
  throw badRequest(`invalid KV version "${version}": expected 1 or 2`);
};

/**
 * On the change stream a KV v2 secret is one thing, `MOUNT/PATH`, whichever sub-API changed it; subscribers may
 * see it if they may read `MOUNT/data/PATH`. Config changes are not secret changes.
 */
function changes(kind: 'write' | 'delete' | undefined, records: PathRecord[]): PathRecord[] {
  return records.map((record) => ({
    ...record,
    changeScope: (req) => {
      const path = req.params.path;
      if (!path) return undefined;
      const deleting = kind ?? (req.operation === 'delete' ? 'delete' : 'write');
      return { path, aclPath: `data/${path}`, kind: deleting };
    },
  }));
}

export function v2Paths(state: KvState): PathRecord[] {
  return [
    ...configPaths(state).map((record) => ({ ...record, changeScope: () => undefined })),
    ...changes(undefined, dataPaths(state)),
    ...changes(undefined, metadataPaths(state)),
    ...changes('delete', deletePaths(state)),
    ...changes('write', undeletePaths(state)),
    ...changes('delete', destroyPaths(state)),
    ...subkeysPaths(state),
    // Last, so every real route is tried first: Vault answers any other path with 404 and a hint.
    invalidPath,
  ];
}

const invalid = async (req: Request): Promise<Response> =>
  ['data', 'metadata', 'delete', 'undelete', 'destroy'].includes(req.path)
    ? notFoundWithWarning(ROOT_WARNING)
    : invalidPathResponse(req);

const invalidPath: PathRecord = {
  pattern: '.*',
  summary: 'Any path a versioned K/V secrets engine does not serve.',
  freeForm: true,
  operations: { read: invalid, update: invalid, patch: invalid, delete: invalid, list: invalid },
};

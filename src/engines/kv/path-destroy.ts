import type { PathRecord, Request } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { secretPath, versionList } from './request.js';
import { KvStore, type KvState } from './store.js';

/**
 * destroy/<path>: permanently removes the data of the listed versions. Their metadata stays, marked destroyed, so
 * reads of them answer 404 with destroyed: true. The flag and the removal land in one transaction.
 */
export function destroyPaths(state: KvState): PathRecord[] {
  const update = async (req: Request): Promise<undefined> => {
    const path = secretPath(req);
    const versions = versionList(req.data.versions);
    // Lower-case "no", unlike delete/ and undelete/: Vault's own wording.
    if (versions.length === 0) throw badRequest('no version number provided');
    const store = new KvStore(req.storage, state);
    await store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      if (!meta) return;
      const existing: number[] = [];
      for (const n of new Set(versions)) {
        const vm = meta.versions[String(n)];
        if (!vm) continue;
        vm.destroyed = true;
        existing.push(n);
      }
      await store.saveDestroyed(meta, existing);
    });
    return undefined;
  };

  return [
    {
      pattern: 'destroy/(?<path>.*)',
      summary: 'Permanently removes one or more versions in the KV store.',
      fields: {
        versions: {
          type: 'any', // see delete/: a list, a comma-separated string or one integer
          description: 'The versions to destroy. Their data will be permanently deleted.',
        },
      },
      operations: { update },
    },
  ];
}

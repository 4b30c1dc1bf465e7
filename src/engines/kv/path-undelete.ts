import type { PathRecord, Request } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { attributionOf, secretPath, versionList } from './request.js';
import { KvStore, type KvState } from './store.js';
import { scheduledDeletion } from './versioning.js';

/**
 * undelete/<path>: restores soft-deleted versions. Destroyed versions cannot come back. An undeleted version gets a
 * fresh deletion_time when delete_version_after applies, counted from now, as Vault does.
 */
export function undeletePaths(state: KvState): PathRecord[] {
  const update = async (req: Request): Promise<undefined> => {
    const path = secretPath(req);
    const versions = versionList(req.data.versions);
    if (versions.length === 0) throw badRequest('No version number provided');
    const store = new KvStore(req.storage, state);
    await store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      if (!meta) return;
      const config = await store.config();
      const now = Date.now();
      for (const n of versions) {
        const vm = meta.versions[String(n)];
        if (!vm || vm.destroyed) continue;
        vm.deletion_time = scheduledDeletion(now, config, meta);
        vm.deleted_by = null;
      }
      meta.last_updated_by = attributionOf(req, 'undelete');
      await store.saveMeta(meta);
    });
    return undefined;
  };

  return [
    {
      pattern: 'undelete/(?<path>.*)',
      summary: 'Undeletes one or more versions from the KV store.',
      fields: {
        versions: {
          type: 'any', // see delete/: a list, a comma-separated string or one integer
          description: 'The versions to unarchive. Their data will be returned on normal reads again.',
        },
      },
      operations: { update },
    },
  ];
}

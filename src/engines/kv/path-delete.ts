import type { PathRecord, Request } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { attributionOf, secretPath, versionList } from './request.js';
import { KvStore, type KvState } from './store.js';
import { isDeleted, nowIso } from './versioning.js';

/**
 * delete/<path>: soft-deletes the listed versions. Missing, destroyed and already deleted versions are skipped, and
 * a key that does not exist is no error: Vault answers 204 in every case.
 */
export function deletePaths(state: KvState): PathRecord[] {
  const update = async (req: Request): Promise<undefined> => {
    const path = secretPath(req);
    const versions = versionList(req.data.versions);
    if (versions.length === 0) throw badRequest('No version number provided');
    const store = new KvStore(req.storage, state);
    await store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      if (!meta) return;
      const by = attributionOf(req);
      const now = nowIso();
      for (const n of versions) {
        const vm = meta.versions[String(n)];
        if (!vm || vm.destroyed || isDeleted(vm)) continue;
        vm.deletion_time = now;
        vm.deleted_by = by;
      }
      meta.last_updated_by = by;
      await store.saveMeta(meta);
    });
    return undefined;
  };

  return [
    {
      pattern: 'delete/(?<path>.*)',
      summary: 'Marks one or more versions as deleted in the KV store.',
      fields: {
        versions: {
          // 'any': Vault accepts a list of integers, a comma-separated string or one integer; versionList parses it.
          type: 'any',
          description: 'The versions to be archived. Their data is kept but no longer returned by normal reads.',
        },
      },
      operations: { update },
    },
  ];
}

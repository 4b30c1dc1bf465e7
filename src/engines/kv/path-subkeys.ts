import type { PathRecord, Request, Response } from '../../core/backend.js';
import { notFound } from '../../core/errors.js';
import { intParam, secretPath } from './request.js';
import { KvStore, type KvState } from './store.js';
import { isDeleted, subkeysOf, versionView } from './versioning.js';

/**
 * subkeys/<path>: the shape of a version's data with every value replaced by null, for callers allowed to see
 * which keys a secret has but not their values. ?version= picks a version, ?depth= limits the nesting (0: none).
 */
export function subkeysPaths(state: KvState): PathRecord[] {
  const read = async (req: Request, retried = false): Promise<Response> => {
    const path = secretPath(req);
    const store = new KvStore(req.storage, state);
    const meta = await store.viewMeta(path);
    if (!meta) throw notFound();
    const requested = intParam(req, 'version');
    const version = requested > 0 ? requested : meta.current_version;
    const vm = meta.versions[String(version)];
    if (!vm) throw notFound();
    const metadata = versionView(meta, version, vm);
    if (vm.destroyed || isDeleted(vm)) return { status: 404, data: { subkeys: null, metadata } };
    const data = await store.viewVersionData(path, version);
    if (data === undefined) {
      // Lock-free read raced a trim or destroy: the metadata read again tells which (see data/).
      if (!retried) return read(req, true);
      throw new Error('could not find version data');
    }
    return { data: { subkeys: subkeysOf(data, intParam(req, 'depth')), metadata } };
  };

  return [
    {
      pattern: 'subkeys/(?<path>.*)',
      summary: 'Read the structure of a secret entry from the Key-Value store with the values removed.',
      fields: {
        depth: { type: 'int', description: 'The maximum depth to traverse. No limit if not provided or 0.' },
        version: { type: 'int', description: 'The version to read. The current version if not provided.' },
      },
      operations: { read: (req) => read(req) },
    },
  ];
}

import type { PathRecord, Request, Response } from '../../core/backend.js';
import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import { badRequest, notFound } from '../../core/errors.js';
import {
  attributionOf,
  intParam,
  invalidPathResponse,
  notFoundWithWarning,
  ROOT_WARNING,
  secretPath,
} from './request.js';
import { KvStore, newKeyMeta, type KvState } from './store.js';
import { addVersion, checkCas, isDeleted, isPlainObject, mergePatch, nowIso, versionView } from './versioning.js';

/**
 * data/<path>: read a version, write a new version, patch the current version into a new one, soft-delete the
 * current version. Every change runs under the key's lock and lands in one storage transaction.
 */
export function dataPaths(state: KvState): PathRecord[] {
  const storeOf = (req: Request): KvStore => new KvStore(req.storage, state);

  // Vault's data route needs a non-empty path without a trailing slash; anything else gets its 404 with a warning.
  const routed =
    (handler: (req: Request, path: string) => Promise<Response | undefined>) =>
    async (req: Request): Promise<Response | undefined> => {
      const path = secretPath(req);
      if (path === '') return notFoundWithWarning(ROOT_WARNING);
      if (path.endsWith('/')) return invalidPathResponse(req);
      return handler(req, path);
    };

  const read = async (req: Request, path: string, retried = false): Promise<Response> => {
    const store = storeOf(req);
    const meta = await store.viewMeta(path);
    if (!meta) throw notFound();
    const requested = intParam(req, 'version');
    const version = requested > 0 ? requested : meta.current_version;
    const vm = meta.versions[String(version)];
    if (!vm) throw notFound();
    const metadata = versionView(meta, version, vm);
    // A deleted or destroyed version answers 404 but still tells its metadata, as Vault does.
    if (vm.destroyed || isDeleted(vm)) return { status: 404, data: { data: null, metadata } };
    const data = await store.viewVersionData(path, version);
    if (data === undefined) {
      // Reads take no lock: a concurrent write may have trimmed or destroyed this version between our two reads.
      // Reading the metadata again shows what happened.
      if (!retried) return read(req, path, true);
      throw new Error('could not find version data');
    }
    return { data: { data, metadata } };
  };

  const write = async (req: Request, path: string): Promise<Response> => {
    const data = req.data.data;
    if (!isPlainObject(data)) throw badRequest('no data provided');
    const options = req.data.options as Record<string, unknown> | undefined;
    const store = storeOf(req);
    return store.withLock(path, async () => {
      const config = await store.config();
      const found = await store.getMeta(path);
      await assertExistenceAsAuthorised(req, found !== undefined);
      const meta = found ?? newKeyMeta(path);
      checkCas(options, config, meta);
      const { vm, trimmed } = addVersion(meta, config, nowIso(), attributionOf(req));
      if (req.change) req.change.version = meta.current_version;
      await store.saveNewVersion(meta, data, trimmed);
      return { data: versionView(meta, meta.current_version, vm) };
    });
  };

  const patch = async (req: Request, path: string): Promise<Response> => {
    const changes = req.data.data;
    if (!isPlainObject(changes)) throw badRequest('no data provided');
    const options = req.data.options as Record<string, unknown> | undefined;
    const store = storeOf(req);
    return store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      if (!meta) throw notFound();
      const config = await store.config();
      checkCas(options, config, meta);
      const current = meta.versions[String(meta.current_version)];
      if (!current) throw notFound();
      if (current.destroyed || isDeleted(current)) {
        return { status: 404, data: versionView(meta, meta.current_version, current) };
      }
      const existing = await store.getVersionData(path, meta.current_version);
      if (existing === undefined) throw new Error('could not find version data');
      const patched = mergePatch(existing, changes) as Record<string, unknown>;
      const { vm, trimmed } = addVersion(meta, config, nowIso(), attributionOf(req));
      if (req.change) req.change.version = meta.current_version;
      await store.saveNewVersion(meta, patched, trimmed);
      return { data: versionView(meta, meta.current_version, vm) };
    });
  };

  // Soft-deletes the current version; answers 204 whether or not there was anything to delete.
  const remove = async (req: Request, path: string): Promise<undefined> => {
    const store = storeOf(req);
    await store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      const current = meta?.versions[String(meta.current_version)];
      if (!meta || !current || current.destroyed || isDeleted(current)) return;
      const by = attributionOf(req);
      current.deletion_time = nowIso();
      current.deleted_by = by;
      meta.last_updated_by = by;
      await store.saveMeta(meta);
    });
    return undefined;
  };

  return [
    {
      pattern: 'data/(?<path>.*)',
      summary: 'Write, Patch, Read, and Delete data in the Key-Value Store.',
      description:
        'A read returns the latest version, or the one ?version= names, with its metadata. A write stores a new ' +
        'version (check-and-set with options.cas). A patch merges a JSON merge patch into the latest version. ' +
        'A delete soft-deletes the latest version: undelete/ brings it back.',
      fields: {
        version: {
          type: 'int',
          description: 'If provided during a read, the value at the version number will be returned.',
        },
        options: {
          type: 'map',
          description:
            'Options for writing a KV entry. "cas": write only if the current version matches (0: only if the key does not exist).',
        },
        data: { type: 'map', description: 'The contents of the data map will be stored and returned on read.' },
      },
      operations: {
        read: routed((req, path) => read(req, path)),
        create: routed(write),
        update: routed(write),
        patch: routed(patch),
        delete: routed(remove),
      },
      // create vs update for ACL: the key exists once it has metadata, even with every version deleted.
      exists: async (req) => {
        const path = req.params.path ?? '';
        return path !== '' && (await storeOf(req).hasMeta(path));
      },
    },
  ];
}

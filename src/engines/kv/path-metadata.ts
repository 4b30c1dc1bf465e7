import type { PathRecord, Request, Response } from '../../core/backend.js';
import { notFound } from '../../core/errors.js';
import { parseCustomMetadata, validateCustomMetadata } from './custom-metadata.js';
import { nonNegative } from './path-config.js';
import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import { boolParam, goDuration, secretPath } from './request.js';
import { KvStore, newKeyMeta, type KeyMeta, type KvState } from './store.js';
import { nowIso, setOwn } from './versioning.js';

const CAS_IGNORED_WARNING =
  '"cas_required" set to false, but is mandated by backend config. This value will be ignored.';

/**
 * metadata/<path>: a key's version-agnostic settings and bookkeeping. LIST here is how KV v2 lists secrets; DELETE
 * removes the key with every version for good.
 */
export function metadataPaths(state: KvState): PathRecord[] {
  const storeOf = (req: Request): KvStore => new KvStore(req.storage, state);

  const read = async (req: Request): Promise<Response> => {
    const meta = await storeOf(req).viewMeta(secretPath(req));
    if (!meta) throw notFound();
    const versions: Record<string, unknown> = {};
    for (const [n, vm] of Object.entries(meta.versions)) {
      versions[n] = {
        created_by: vm.created_by,
        created_time: vm.created_time,
        deleted_by: vm.deleted_by,
        deletion_time: vm.deletion_time,
        destroyed: vm.destroyed,
      };
    }
    return {
      data: {
        cas_required: meta.cas_required,
        created_time: meta.created_time,
        current_version: meta.current_version,
        custom_metadata: meta.custom_metadata,
        delete_version_after: goDuration(meta.delete_version_after),
        last_updated_by: meta.last_updated_by,
        max_versions: meta.max_versions,
        oldest_version: meta.oldest_version,
        updated_time: meta.updated_time,
        versions,
      },
    };
  };

  const list = async (req: Request): Promise<Response> => {
    let prefix = req.params.path ?? '';
    // LIST always names a folder; Vault's HTTP layer adds the slash when the caller leaves it out.
    if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
    const store = storeOf(req);
    let keys = await store.listMeta(prefix);
    if (boolParam(req, 'exclude_deleted')) {
      const kept: string[] = [];
      for (const key of keys) {
        if (!key.endsWith('/')) {
          const meta = await store.getMeta(prefix + key);
          // Vault's test: the current version has a deletion_time at all, even one still in the future.
          if (meta && meta.versions[String(meta.current_version)]?.deletion_time) continue;
        }
        kept.push(key);
      }
      keys = kept;
    }
    if (keys.length === 0) throw notFound();
    return { data: { keys } };
  };

  /** The warning Vault gives when a key turns cas_required off while the mount requires it anyway. */
  const casWarning = async (req: Request): Promise<string[]> => {
    if (req.data.cas_required !== false) return [];
    return (await storeOf(req).config()).cas_required ? [CAS_IGNORED_WARNING] : [];
  };

  const write = async (req: Request): Promise<Response | undefined> => {
    const path = secretPath(req);
    const { max_versions: max, cas_required: cas, delete_version_after: dva, custom_metadata: custom } = req.data;
    // Vault writes nothing when no setting is given, and in particular creates no metadata.
    if (max === undefined && cas === undefined && dva === undefined && custom === undefined) return undefined;
    let customMetadata: Record<string, string> | undefined;
    if (custom !== undefined) {
      customMetadata = parseCustomMetadata(custom as Record<string, unknown>, false) as Record<string, string>;
      validateCustomMetadata(customMetadata);
    }
    const maxVersions = max === undefined ? undefined : nonNegative(max as number, 'max_versions');
    const warnings = await casWarning(req);
    const store = storeOf(req);
    await store.withLock(path, async () => {
      const found = await store.getMeta(path);
      await assertExistenceAsAuthorised(req, found !== undefined);
      const meta = found ?? newKeyMeta(path, nowIso());
      if (maxVersions !== undefined) meta.max_versions = maxVersions;
      if (cas !== undefined) meta.cas_required = cas as boolean;
      if (dva !== undefined) meta.delete_version_after = dva as number;
      if (customMetadata !== undefined) meta.custom_metadata = emptyToNull(customMetadata);
      await store.saveMeta(meta);
    });
    return warnings.length > 0 ? { warnings } : undefined;
  };

  // JSON merge patch of the settings: members left out (or null at the top level) stay as they are, and inside
  // custom_metadata a null removes that key.
  const patch = async (req: Request): Promise<Response | undefined> => {
    const path = secretPath(req);
    const { max_versions: max, cas_required: cas, delete_version_after: dva, custom_metadata: custom } = req.data;
    let changes: Record<string, string | null> | undefined;
    if (custom !== undefined) {
      changes = parseCustomMetadata(custom as Record<string, unknown>, true);
      validateCustomMetadata(changes);
    }
    const maxVersions = max === undefined ? undefined : nonNegative(max as number, 'max_versions');
    const store = storeOf(req);
    const warnings = await store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      if (!meta) throw notFound();
      const found = await casWarning(req);
      if (maxVersions !== undefined) meta.max_versions = maxVersions;
      if (cas !== undefined) meta.cas_required = cas as boolean;
      if (dva !== undefined) meta.delete_version_after = dva as number;
      if (changes !== undefined) meta.custom_metadata = mergeCustomMetadata(meta.custom_metadata, changes);
      await store.saveMeta(meta);
      return found;
    });
    return warnings.length > 0 ? { warnings } : undefined;
  };

  const remove = async (req: Request): Promise<undefined> => {
    const path = secretPath(req);
    const store = storeOf(req);
    await store.withLock(path, async () => {
      const meta = await store.getMeta(path);
      if (meta) await store.deleteKey(meta);
    });
    return undefined;
  };

  return [
    {
      // "metadata" alone is the mount's root folder for LIST.
      pattern: 'metadata(?:/(?<path>.*))?',
      summary: 'Allows interaction with key metadata and settings in the KV store.',
      description:
        'A read shows every kept version of a key with its times and state; a write or patch sets the key’s ' +
        'max_versions, cas_required, delete_version_after and custom_metadata; LIST lists keys; a delete removes ' +
        'the key with all its versions for good.',
      fields: {
        exclude_deleted: {
          type: 'bool',
          description: 'If true, exclude keys where the current version is deleted when listing keys.',
        },
        cas_required: {
          type: 'bool',
          description: "If true the key will require the cas parameter on all writes; if false, the backend's setting.",
        },
        max_versions: {
          type: 'int',
          description: "The number of versions to keep. If not set, the backend's configured max version is used.",
        },
        delete_version_after: {
          type: 'duration',
          description: 'The length of time before a version is deleted. Zero clears it; negative is an error.',
        },
        custom_metadata: {
          type: 'map',
          description: 'User-provided key-value pairs describing arbitrary, version-agnostic information.',
        },
      },
      operations: { read, list, create: write, update: write, patch, delete: remove },
      exists: async (req) => {
        const path = req.params.path ?? '';
        return path !== '' && (await storeOf(req).hasMeta(path));
      },
    },
  ];
}

function mergeCustomMetadata(
  current: KeyMeta['custom_metadata'],
  changes: Record<string, string | null>,
): KeyMeta['custom_metadata'] {
  const merged: Record<string, string> = { ...(current ?? {}) };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete merged[key];
    else setOwn(merged, key, value);
  }
  return emptyToNull(merged);
}

/** Vault stores custom_metadata in protobuf, where an empty map reads back as null. */
function emptyToNull(pairs: Record<string, string>): Record<string, string> | null {
  return Object.keys(pairs).length === 0 ? null : pairs;
}

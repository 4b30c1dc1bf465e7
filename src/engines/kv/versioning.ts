import { badRequest } from '../../core/errors.js';
import { DEFAULT_MAX_VERSIONS, type Attribution, type KeyMeta, type KvConfig, type VersionMeta } from './store.js';

/** The rules of KV v2 versions, free of storage and HTTP so each can be read (and tested) on its own. */

export { nowIso } from '../../core/now-iso.js';

/**
 * A version counts as deleted once its deletion_time has passed. delete_version_after sets a deletion_time in the
 * future, and the version stays readable until then. "<=" rather than Vault's strict "before": our clock has
 * millisecond resolution, and a read in the same millisecond as the delete must already see it deleted.
 */
export function isDeleted(vm: VersionMeta, nowMs = Date.now()): boolean {
  return vm.deletion_time !== '' && Date.parse(vm.deletion_time) <= nowMs;
}

/** The per-version metadata Vault returns from data reads, writes, patches and subkeys. */
export function versionView(meta: KeyMeta, version: number, vm: VersionMeta): Record<string, unknown> {
  return {
    created_time: vm.created_time,
    custom_metadata: meta.custom_metadata,
    deletion_time: vm.deletion_time,
    destroyed: vm.destroyed,
    version,
  };
}

/**
 * When a version written (or undeleted) at `fromMs` is deleted: the smaller non-zero of the mount's and the key's
 * delete_version_after; none when both are unset or the mount disabled it (negative).
 */
export function scheduledDeletion(fromMs: number, config: KvConfig, meta: KeyMeta): string {
  const mount = config.delete_version_after;
  const key = meta.delete_version_after;
  if (mount < 0 || (mount === 0 && key === 0)) return '';
  const seconds = key === 0 ? mount : mount === 0 ? key : Math.min(mount, key);
  return new Date(fromMs + seconds * 1000).toISOString();
}

/** The greater of the key's and the mount's max_versions, or 10 when neither is set: Vault's own rule. */
export function effectiveMaxVersions(config: KvConfig, meta: KeyMeta): number {
  const max = Math.max(meta.max_versions, config.max_versions);
  return max > 0 ? max : DEFAULT_MAX_VERSIONS;
}

/**
 * Adds the next version to the metadata and slides the window of kept versions. Returns the new version's
 * metadata and the version numbers whose data must now be deleted.
 */
export function addVersion(
  meta: KeyMeta,
  config: KvConfig,
  createdTime: string,
  by: Attribution,
): { vm: VersionMeta; trimmed: number[] } {
  const vm: VersionMeta = {
    created_time: createdTime,
    deletion_time: scheduledDeletion(Date.parse(createdTime), config, meta),
    destroyed: false,
    created_by: by,
    deleted_by: null,
  };
  meta.current_version += 1;
  meta.versions[String(meta.current_version)] = vm;
  meta.updated_time = createdTime;
  if (meta.created_time === '') meta.created_time = createdTime;
  meta.last_updated_by = by;

  const trimmed: number[] = [];
  const max = effectiveMaxVersions(config, meta);
  if (meta.current_version - meta.oldest_version >= max) {
    // Loop: max_versions may have been lowered since the last write, so several versions can go at once.
    const lastToDelete = meta.current_version - max;
    for (let n = meta.oldest_version; n <= lastToDelete; n++) {
      if (n === 0) continue; // versions start at 1; oldest_version is 0 until the first trim
      delete meta.versions[String(n)];
      trimmed.push(n);
    }
    meta.oldest_version = lastToDelete + 1;
  }
  return { vm, trimmed };
}

/**
 * Check-and-set. With options.cas given, the write proceeds only if it equals the current version (0: only if the
 * key has no version yet). Without it, the write is refused when the mount or the key requires cas.
 */
export function checkCas(options: Record<string, unknown> | undefined, config: KvConfig, meta: KeyMeta): void {
  if (options !== undefined && Object.prototype.hasOwnProperty.call(options, 'cas')) {
    const cas = weakInt(options.cas);
    if (cas === undefined) throw badRequest('error parsing check-and-set parameter');
    if (cas !== meta.current_version) throw badRequest('check-and-set parameter did not match the current version');
    return;
  }
  if (config.cas_required || meta.cas_required) throw badRequest('check-and-set parameter required for this call');
}

/** An integer from a JSON value the way Go's mapstructure.WeakDecode reads one; undefined if it cannot. */
function weakInt(value: unknown): number | undefined {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string') {
    const text = value.trim();
    if (text === '') return 0;
    if (/^[+-]?\d+$/.test(text)) return Number(text);
  }
  return undefined;
}

/** RFC 7396 JSON merge patch: objects merge recursively, null removes a member, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else setOwn(result, key, mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value));
  }
  return result;
}

/**
 * Sets an own property even for keys such as "__proto__", which secret data may legitimately contain and which a
 * plain assignment would turn into a prototype change (dropping the key).
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Replaces every leaf of secret data with null, keeping the nesting: what subkeys/ returns. Empty objects are
 * leaves too, and with maxDepth > 0 objects at that depth become leaves, so no value below it can leak.
 */
export function subkeysOf(data: Record<string, unknown>, maxDepth: number, depth = 1): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    const childDepth = depth + 1;
    const descend = isPlainObject(value) && Object.keys(value).length > 0 && (maxDepth === 0 || childDepth <= maxDepth);
    setOwn(out, key, descend ? subkeysOf(value as Record<string, unknown>, maxDepth, childDepth) : null);
  }
  return out;
}

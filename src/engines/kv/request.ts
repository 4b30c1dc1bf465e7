import type { Request, Response } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { parseFields } from '../../core/fields.js';
import type { Attribution } from './store.js';

/** Reading request parameters the way Vault's framework does for the KV paths. */

export const isWrite = (req: Request): boolean =>
  req.operation === 'create' || req.operation === 'update' || req.operation === 'patch';

/** The secret path captured by a route; writes to an empty path are refused, as Vault does with "missing path". */
export function secretPath(req: Request): string {
  const path = req.params.path ?? '';
  if (path === '' && isWrite(req)) throw badRequest('missing path');
  return path;
}

/**
 * An integer parameter that may come in the body (declared field, already converted) or, for GET and LIST, in the
 * query string (?version=2, ?depth=1). Vault reads both into the same field data.
 */
export function intParam(req: Request, name: string): number {
  const fromData = req.data[name];
  if (typeof fromData === 'number') return fromData;
  const raw = req.query[name];
  if (raw === undefined || raw === '') return 0;
  return parseFields({ [name]: { type: 'int', description: name } }, { [name]: raw }, opts).data[name] as number;
}

export function boolParam(req: Request, name: string): boolean {
  const fromData = req.data[name];
  if (typeof fromData === 'boolean') return fromData;
  const raw = req.query[name];
  if (raw === undefined || raw === '') return false;
  return parseFields({ [name]: { type: 'bool', description: name } }, { [name]: raw }, opts).data[name] as boolean;
}

const opts = { rejectUnknown: false, freeForm: true, applyDefaults: false };

/**
 * The "versions" parameter of delete/, undelete/ and destroy/: a list of integers, a comma-separated string or a
 * single integer (Vault's TypeCommaIntSlice).
 */
export function versionList(value: unknown): number[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [value];
  return items
    .filter((item) => !(typeof item === 'string' && item.trim() === ''))
    .map((item) => {
      if (typeof item === 'number' && Number.isInteger(item)) return item;
      if (typeof item === 'string' && /^\s*-?\d+\s*$/.test(item)) return Number(item);
      throw badRequest('invalid value for field "versions": expected a list of integers');
    });
}

/** Attribution of the caller for version and key metadata (created_by, deleted_by, last_updated_by). */
export function attributionOf(req: Request, operation: string = req.operation): Attribution {
  const by: Attribution = { operation };
  if (req.caller?.displayName) by.actor = req.caller.displayName;
  if (req.caller?.entityId) by.entity_id = req.caller.entityId;
  return by;
}

/** Go's time.Duration.String() for whole seconds, which Vault uses for delete_version_after: "3h25m19s", "0s". */
export function goDuration(totalSeconds: number): string {
  if (totalSeconds === 0) return '0s';
  const sign = totalSeconds < 0 ? '-' : '';
  let rest = Math.abs(Math.trunc(totalSeconds));
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

/** Vault answers these with 404 and a warning rather than an error. */
export const ROOT_WARNING = 'Non-listing operations on the root of a K/V v2 mount are not supported.';

export function notFoundWithWarning(warning: string): Response {
  return { status: 404, warnings: [warning] };
}

/** Vault's answer for a path no KV v2 route serves, naming the CLI command that does the job. */
export function invalidPathResponse(req: Request): Response {
  const command = { create: 'put', update: 'put', patch: 'patch', read: 'get', list: 'list', delete: 'delete' }[
    req.operation
  ];
  return notFoundWithWarning(
    'Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. ' +
      `If using the Vault CLI, use 'vault kv ${command}' for this operation.`,
  );
}

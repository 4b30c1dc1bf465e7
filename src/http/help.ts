import type { AuditEvent } from '../core/audit-format.js';
import type { Field, PathRecord } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { notFound, permissionDenied, sealedError } from '../core/errors.js';
import type { Mounted } from '../core/mount-table.js';
import { auditFailure, auditResponse } from '../core/request/audit.js';
import { authenticate, authorize } from '../core/request/authorise.js';
import { validateApiPath } from '../core/request/index.js';
import { route } from '../core/request/route.js';
import { openApiDocumentFor, template } from './openapi.js';

/**
 * `?help=1` on any path, as Vault's: `{help, openapi, see_also}` for the path record that serves the path (its
 * summary, fields and description, from the same records the router and the OpenAPI document use), or for the
 * whole mount when the path is the mount itself.
 *
 * Vault lets any valid token read any path's help. Cofre asks more: the token must hold some capability on the
 * path, so a token learns nothing about a path it may not use (not even whether something is mounted there),
 * which is the rule every other request follows. Help requests are audited (operation "help") and take a use of
 * a limited-use token, as in Vault.
 */

export interface HelpRequest {
  /** The API path without "/v1/". */
  path: string;
  token: string | undefined;
  requestId: string;
  remoteAddress: string;
}

/** Vault's names for field types in help text (framework.FieldType's String()). */
const TYPE_NAMES: Record<Field['type'], string> = {
  string: 'string',
  int: 'int',
  bool: 'bool',
  duration: 'duration (sec)',
  map: 'map',
  'string-list': 'slice',
  'string-slice': 'slice',
  any: 'any',
};

const indent = (text: string, spaces: number): string =>
  text
    .split('\n')
    .map((line) => (line === '' ? line : ' '.repeat(spaces) + line))
    .join('\n');

/** A record serves help only if the OpenAPI document has it: catch-alls that only answer 404 have none. */
const documented = (mounted: Mounted, record: PathRecord): boolean =>
  template(mounted.prefix, record.pattern) !== undefined;

/** The fields of a record for its help: the declared ones and the path's named captures, alphabetically. */
function helpFields(record: PathRecord): [string, Field][] {
  const fields: Record<string, Field> = { ...record.fields };
  for (const [, name] of record.pattern.matchAll(/\(\?<(\w+)>/g)) {
    if (name && !Object.hasOwn(fields, name)) fields[name] = { type: 'string', description: 'Part of the path.' };
  }
  return Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The help text of one path, laid out as Vault's framework lays it out. */
export function pathHelpText(relative: string, record: PathRecord): string {
  const lines = [`Request:        ${relative}`, `Matching Route: ^${record.pattern}$`, '', record.summary, ''];
  const fields = helpFields(record);
  if (fields.length > 0) {
    lines.push('## PARAMETERS', '');
    for (const [name, field] of fields) {
      lines.push(indent(`${name} (${TYPE_NAMES[field.type]})`, 4), '', indent(field.description, 8), '');
    }
  }
  lines.push('## DESCRIPTION', '', record.description ?? record.summary, '');
  return lines.join('\n');
}

/** The help text of a whole mount: what it is, and every path it serves with its synopsis. */
export function mountHelpText(mounted: Mounted): string {
  const kind = mounted.table === 'auth' ? 'auth method' : 'secrets engine';
  const records = mounted.paths.map(({ record }) => record).filter((record) => documented(mounted, record));
  const paths = records
    .map((record) => ({ route: `^${record.pattern}$`, summary: record.summary }))
    .sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  return [
    '## DESCRIPTION',
    '',
    mounted.backend.help ?? `The ${mounted.entry.type} ${kind}.`,
    '',
    '## PATHS',
    '',
    'The following paths are supported by this backend. To view help for',
    'any of the paths below, use the help command with any route matching',
    'the path pattern. Note that depending on the policy of your auth token,',
    'you may or may not be able to access certain paths.',
    '',
    ...paths.flatMap(({ route: r, summary }) => [indent(r, 4), indent(summary, 8), '']),
  ].join('\n');
}

/** The help of what serves `path`; 404 as Vault's router says it when nothing does. */
function helpFor(core: Core, path: string): Record<string, unknown> {
  const found = route(core, path);
  const mounted = found.mounted;
  if (!mounted) throw notFound(`no handler for route "${path}". route entry not found.`);
  const relative = path.slice(mounted.prefix.length);
  if (relative === '') {
    const records = mounted.paths.map(({ record }) => record);
    return { help: mountHelpText(mounted), openapi: openApiDocumentFor(mounted, records), see_also: null };
  }
  const record = found.route?.record;
  if (!record || !documented(mounted, record)) throw notFound('unsupported path');
  return { help: pathHelpText(relative, record), openapi: openApiDocumentFor(mounted, [record]), see_also: null };
}

export async function serveHelp(core: Core, req: HelpRequest): Promise<Record<string, unknown>> {
  validateApiPath(req.path);
  await core.caughtUp();
  if (core.sealed) throw sealedError();
  const token = await authenticate(core, req.token, req.remoteAddress);
  // Before anything looks at the path: a refusal is the same 403 whether or not the path exists.
  const acl = await core.policies.acl(token.policies);
  const capabilities = acl.capabilities(req.path);
  if (capabilities.length === 0 || capabilities.includes('deny')) throw permissionDenied();
  const caller = await authorize(core, token, req.token!, undefined);
  const event: AuditEvent = {
    time: new Date(),
    type: 'request',
    requestId: req.requestId,
    operation: 'help',
    path: req.path,
    mountType: core.mounts.match(req.path)?.entry.type ?? '',
    remoteAddress: req.remoteAddress,
    clientToken: req.token,
    caller,
    requestData: {},
    error: '',
  };
  await core.audit.log(event);
  const lastUse = await core.tokens.use(token);
  let body: Record<string, unknown>;
  try {
    body = helpFor(core, req.path);
  } catch (err) {
    await auditFailure(core, event, err, true);
    throw err;
  } finally {
    if (lastUse) await core.tokens.revokeTree(token.hash);
  }
  await auditResponse(core, event, { data: body });
  return body;
}

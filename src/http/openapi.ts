import type { Field, Operation, PathRecord } from '../core/backend.js';
import type { Mounted } from '../core/mount-table.js';
import { VERSION } from '../core/core.js';

const SCHEMA: Record<Field['type'], Record<string, unknown>> = {
  string: { type: 'string' },
  int: { type: 'integer' },
  bool: { type: 'boolean' },
  duration: { oneOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] },
  map: { type: 'object' },
  'string-list': { oneOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }] },
  'string-slice': { oneOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }] },
  any: {},
};

const VERB: Record<Operation, string> = {
  read: 'get',
  list: 'get',
  create: 'post',
  update: 'post',
  patch: 'patch',
  delete: 'delete',
};

/**
 * Turns a path pattern into an OpenAPI template: named groups become {params}, optional groups are taken as
 * present, a trailing "/?" becomes "/". Patterns that stay regular expressions after that (catch-alls that only
 * answer 404) have no template and are left out of the document.
 */
export function template(prefix: string, pattern: string): { path: string; params: string[] } | undefined {
  const params: string[] = [];
  // Innermost optional groups first, until none is left: a name pattern may nest one inside a parameter.
  let expanded = prefix + pattern;
  for (let previous = ''; previous !== expanded;) {
    previous = expanded;
    expanded = expanded.replace(/\(\?:([^()]*(?:\([^()]*\)[^()]*)*)\)\?/g, '$1');
  }
  const path = expanded
    .replace(/\(\?<(\w+)>[^)]*\)/g, (_m, name: string) => {
      params.push(name);
      return `{${name}}`;
    })
    .replace(/\/\?$/, '/');
  return /[.*+?()[\]|\\^$]/.test(path) ? undefined : { path: `/${path}`, params };
}

function operationObject(
  record: PathRecord,
  op: Operation,
  path: string,
  params: string[],
  tag: string,
): Record<string, unknown> {
  const parameters: Record<string, unknown>[] = params.map((name) => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  // read and list share GET; a list is asked for with ?list=true (the LIST verb is rewritten to that).
  if (op === 'list')
    parameters.push({ name: 'list', in: 'query', required: true, schema: { type: 'string', enum: ['true'] } });
  const result: Record<string, unknown> = {
    summary: record.summary,
    ...(record.description ? { description: record.description } : {}),
    operationId: `${op}${path.replace(/[^A-Za-z0-9]+/g, '-')}`.replace(/-$/, ''),
    tags: [tag],
    parameters,
    responses: {
      '200': { description: 'OK' },
      '204': { description: 'empty body' },
      '400': { description: 'invalid request' },
      '403': { description: 'permission denied' },
      '404': { description: 'not found' },
    },
  };
  const fields = Object.entries(record.fields ?? {}).filter(([name]) => !params.includes(name));
  if ((op === 'create' || op === 'update' || op === 'patch') && (fields.length > 0 || record.freeForm)) {
    const properties = Object.fromEntries(
      fields.map(([name, f]) => [name, { ...SCHEMA[f.type], description: f.description }]),
    );
    result.requestBody = {
      required: fields.some(([, f]) => f.required),
      content: {
        [op === 'patch' ? 'application/merge-patch+json' : 'application/json']: {
          schema: {
            type: 'object',
            properties,
            required: fields.filter(([, f]) => f.required).map(([n]) => n),
            additionalProperties: !record.rejectUnknownFields,
          },
        },
      },
    };
  }
  return result;
}

/** Adds the operations of a mount's records to an OpenAPI `paths` object (the first record of a path wins). */
function addPaths(paths: Record<string, Record<string, unknown>>, mounted: Mounted, records: PathRecord[]): void {
  for (const record of records) {
    const templated = template(mounted.prefix, record.pattern);
    if (!templated) continue;
    const { path, params } = templated;
    const item = (paths[path] ??= {});
    for (const op of Object.keys(record.operations) as Operation[]) {
      const verb = VERB[op];
      if (item[verb] === undefined) item[verb] = operationObject(record, op, path, params, mounted.entry.type);
    }
  }
}

function document(paths: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return {
    openapi: '3.0.2',
    info: { title: 'Cofre API', version: VERSION, description: 'Vault-compatible HTTP API of Cofre.' },
    servers: [{ url: '/v1' }],
    components: {
      securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Vault-Token' } },
    },
    security: [{ token: [] }],
    paths,
  };
}

/** The OpenAPI 3 document of every path currently mounted, generated from the same records the router uses. */
export function openApiDocument(mounts: Mounted[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const mounted of mounts)
    addPaths(
      paths,
      mounted,
      mounted.paths.map(({ record }) => record),
    );
  return document(paths);
}

/** The same document for some records of one mount: what `?help=1` returns for a path or a mount. */
export function openApiDocumentFor(mounted: Mounted, records: PathRecord[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  addPaths(paths, mounted, records);
  return document(paths);
}

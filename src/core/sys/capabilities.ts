import type { Field, PathRecord, Request, Response } from '../backend.js';
import type { TokenEntry } from '../token-store.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';
import { setOwn } from '../own-keys.js';

const pathFields: Record<string, Field> = {
  path: { type: 'string-list', description: 'Path or paths to report capabilities on.' },
  paths: { type: 'string-list', description: 'Paths to report capabilities on.' },
};

/** Capabilities per path for a token entry, in Vault's shape: one key per path plus "capabilities" when single. */
async function report(core: Core, entry: TokenEntry | undefined, req: Request): Promise<Response> {
  if (!entry) throw badRequest('invalid token');
  const paths = [
    ...((req.data.paths as string[] | undefined) ?? []),
    ...((req.data.path as string[] | undefined) ?? []),
  ];
  if (paths.length === 0) throw badRequest("'path' or 'paths' must be given");
  const acl = await core.policies.acl(entry.policies);
  const data: Record<string, unknown> = {};
  for (const path of paths) setOwn(data, path, acl.capabilities(path.replace(/^\/+/, '')));
  if (paths.length === 1) data.capabilities = acl.capabilities(paths[0]!.replace(/^\/+/, ''));
  return { data, mergeDataToTop: true };
}

export function capabilityPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: 'capabilities',
      storesNothing: true,
      summary: "A token's capabilities on paths.",
      fields: { ...pathFields, token: { type: 'string', description: 'The token to check.' } },
      operations: { update: async (req) => report(core, await core.tokens.lookup(req.data.token as string), req) },
    },
    {
      pattern: 'capabilities-self',
      storesNothing: true,
      summary: "The calling token's capabilities on paths.",
      fields: pathFields,
      operations: {
        update: async (req) => report(core, req.caller?.token, req),
      },
    },
    {
      pattern: 'capabilities-accessor',
      storesNothing: true,
      summary: 'Capabilities, on paths, of the token with this accessor.',
      fields: { ...pathFields, accessor: { type: 'string', description: 'The accessor of the token to check.' } },
      operations: {
        update: async (req) => report(core, await core.tokens.lookupAccessor(req.data.accessor as string), req),
      },
    },
  ];
}

import type { BackendFactory, PathRecord, Request, Response, SystemView } from '../../core/backend.js';
import { cubbyholeKey } from '../../core/cubbyhole.js';
import { badRequest, notFound, permissionDenied } from '../../core/errors.js';
import { getJson, putJson } from '../../core/storage-view.js';

/**
 * The cubbyhole engine, Vault's per-token private storage, mounted by the core at cubbyhole/ on every server.
 * Every path is relative to the calling token's own cubbyhole (keyed by the token's salted hash, see
 * src/core/cubbyhole.ts): no path can name another token's entries, and a listing sees only the caller's. The
 * token store destroys a token's cubbyhole when the token is revoked or expires.
 */
export const cubbyholeFactory: BackendFactory = (ctx) => ({ type: 'cubbyhole', paths: cubbyholePaths(ctx.system) });

/** The caller's own storage key for the request path; a cubbyhole has no meaning without a token. */
function ownKey(req: Request, path = req.path): string {
  const tokenHash = req.caller?.tokenId;
  if (!tokenHash) throw permissionDenied('client token empty');
  return cubbyholeKey(tokenHash, path);
}

function cubbyholePaths(system: SystemView): PathRecord[] {
  const read = async (req: Request): Promise<Response> => {
    if (req.path === '') throw badRequest('missing path');
    const data = await getJson<Record<string, unknown>>(req.storage, ownKey(req));
    if (data === undefined) throw notFound();
    return { data };
  };

  const write = async (req: Request): Promise<undefined> => {
    if (req.path === '') throw badRequest('missing path');
    if (req.path.endsWith('/')) throw badRequest("cannot write to a path ending in '/'");
    if (Object.keys(req.raw).length === 0) throw badRequest('missing data fields');
    const key = ownKey(req);
    await putJson(req.storage, key, req.raw);
    // A revocation that began while this write was on its way may have destroyed the cubbyhole before the write
    // landed: the revocation marks the token first, so the write sees the mark here and takes itself back.
    if (system.tokenLive && !(await system.tokenLive(req.caller!.tokenId))) {
      await req.storage.delete(key);
      throw permissionDenied('permission denied: invalid or expired token');
    }
    return undefined;
  };

  const remove = async (req: Request): Promise<undefined> => {
    if (req.path === '') throw badRequest('missing path');
    await req.storage.delete(ownKey(req));
    return undefined;
  };

  const list = async (req: Request): Promise<Response> => {
    // Only folders are listed; the root of the caller's cubbyhole is the folder "".
    const folder = req.path === '' || req.path.endsWith('/') ? req.path : `${req.path}/`;
    const keys = await req.storage.list(ownKey(req, folder));
    if (keys.length === 0) throw notFound();
    return { data: { keys } };
  };

  return [
    {
      pattern: '(?<path>.*)',
      summary: "Per-token private storage: read, write, delete and list secrets in the calling token's cubbyhole.",
      freeForm: true,
      operations: { read, create: write, update: write, delete: remove, list },
      exists: async (req) =>
        req.path !== '' && req.caller !== undefined && (await req.storage.get(ownKey(req))) !== undefined,
      // A cubbyhole is private to one token: its changes are no one else's to watch.
      changeScope: () => undefined,
    },
  ];
}

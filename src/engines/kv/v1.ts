import type { PathRecord, Request, Response } from '../../core/backend.js';
import { retryOnConflict } from '../../core/conflict-retry.js';
import { badRequest, CofreError, notFound } from '../../core/errors.js';
import { SYSTEM_DEFAULT_TTL } from '../../core/expiration.js';
import { parseDuration } from '../../core/fields.js';
import { KeyLocks } from '../../core/key-locks.js';
import { getJson, jsonBytes } from '../../core/storage-view.js';
import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import { ServiceGate } from './upgrade.js';

/**
 * KV version 1: every path is a secret, stored as-is under its own path, without versions or metadata. The whole
 * request body is the secret, hence freeForm. Every request passes the gate, which an upgrade to version 2 closes.
 */
export function v1Paths(gate = new ServiceGate()): PathRecord[] {
  const locks = new KeyLocks();

  const read = async (req: Request): Promise<Response> => {
    const data = await getJson<Record<string, unknown>>(req.storage, req.path);
    if (data === undefined) throw notFound();
    // Vault reports a "ttl" (or legacy "lease") member of the secret as the lease duration, a hint for readers of
    // when to read again. No lease is created (leaseId stays empty); the secret is not revoked when it runs out.
    return { data, lease: { leaseId: '', ttl: ttlOf(data), renewable: false } };
  };

  // Committed only if the path still holds what was found, or made again on what it holds then (a delete or write
  // that came in between, on this node or another): a secret deleted or made since the request was authorised as an
  // update or a create asks the ACL again (assertExistenceAsAuthorised), as KV version 2's writes do. The lock keeps
  // this node's writes of one path from refusing each other.
  const write = async (req: Request): Promise<undefined> => {
    if (req.path === '') throw badRequest('missing path');
    if (Object.keys(req.raw).length === 0) throw badRequest('missing data fields');
    const value = jsonBytes(req.raw);
    await locks.run(req.path, () =>
      retryOnConflict(
        async () => {
          const found = (await req.storage.get(req.path)) ?? null;
          await assertExistenceAsAuthorised(req, found !== null);
          await req.storage.transaction([
            { op: 'check', key: req.path, value: found },
            { op: 'put', key: req.path, value },
          ]);
        },
        () => new CofreError(409, 'the secret kept changing on other nodes while this write was made: try again'),
      ),
    );
    return undefined;
  };

  const remove = async (req: Request): Promise<undefined> => {
    await req.storage.delete(req.path);
    return undefined;
  };

  const list = async (req: Request): Promise<Response> => {
    // Only folders can be listed; Vault adds the slash unless listing the root.
    const prefix = req.path === '' || req.path.endsWith('/') ? req.path : `${req.path}/`;
    const keys = await req.storage.list(prefix);
    if (keys.length === 0) throw notFound();
    return { data: { keys } };
  };

  return [
    {
      pattern: '(?<path>.*)',
      summary: 'Pass-through secret storage: read and write arbitrary data into secret storage.',
      freeForm: true,
      operations: {
        read: (req) => gate.run(() => read(req)),
        create: (req) => gate.run(() => write(req)),
        update: (req) => gate.run(() => write(req)),
        delete: (req) => gate.run(() => remove(req)),
        list: (req) => gate.run(() => list(req)),
      },
      exists: async (req) => req.path !== '' && (await req.storage.get(req.path)) !== undefined,
    },
  ];
}

function ttlOf(data: Record<string, unknown>): number {
  const raw = data.ttl ?? data.lease;
  // Vault's default lease TTL, which KV v1 reports as lease_duration when a secret sets no "ttl".
  if (raw === undefined) return SYSTEM_DEFAULT_TTL;
  try {
    return parseDuration(raw, 'ttl');
  } catch {
    return SYSTEM_DEFAULT_TTL; // an unparsable ttl is just data, as in Vault
  }
}

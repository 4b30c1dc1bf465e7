import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend, Caller, Operation, Request, Response, SystemView } from '../../core/backend.js';
import { CofreError } from '../../core/errors.js';
import { parseFields } from '../../core/fields.js';
import type { Storage } from '../../core/storage.js';
import { openSqliteStorage } from '../../storage/sqlite.js';
import { kvFactory } from './index.js';

/**
 * A small stand-in for the router, for the engine's tests: first record whose anchored pattern matches, named
 * groups as params, fields parsed with the core's parseFields, create vs update from the record's exists check,
 * and CofreErrors turned into a status like the HTTP layer. Internal errors are rethrown so tests see them.
 */
export interface Result {
  status: number;
  data: Record<string, unknown> | null | undefined;
  warnings: string[];
  errors: string[];
  response: Response | undefined;
}

export interface Call {
  body?: Record<string, unknown>;
  query?: Record<string, string>;
  caller?: Caller;
}

export const rootCaller: Caller = {
  tokenId: 'root-token',
  accessor: 'root-accessor',
  policies: ['root'],
  root: true,
  displayName: 'root',
  entityId: '',
  token: {
    hash: 'root-token',
    accessor: 'root-accessor',
    parentHash: '',
    policies: ['root'],
    meta: {},
    displayName: 'root',
    numUses: 0,
    creationTime: 0,
    creationTtl: 0,
    explicitMaxTtl: 0,
    period: 0,
    renewable: false,
    expireTime: 0,
    path: 'auth/token/root',
  },
  clientToken: 'root-token',
};

export class Harness {
  constructor(
    readonly backend: Backend,
    readonly storage: Storage,
  ) {}

  /** 'write' is POST/PUT: the record's exists check turns it into create or update, as the router does. */
  async call(op: Operation | 'write', reqPath: string, call: Call = {}): Promise<Result> {
    const query = call.query ?? {};
    for (const record of this.backend.paths) {
      const match = new RegExp(`^(?:${record.pattern})$`).exec(reqPath);
      if (!match) continue;
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(match.groups ?? {})) if (value !== undefined) params[name] = value;
      // GET and LIST carry their parameters in the query string; Vault reads them into the same field data.
      const raw = op === 'read' || op === 'list' ? { ...query } : { ...(call.body ?? {}) };
      const req: Request = {
        operation: op === 'write' ? 'update' : op,
        path: reqPath,
        params,
        data: {},
        raw,
        query,
        storage: this.storage,
        caller: call.caller ?? rootCaller,
        mountPoint: 'secret/',
        requestId: 'test-request',
        remoteAddress: '',
      };
      try {
        if (op === 'write') req.operation = record.exists && !(await record.exists(req)) ? 'create' : 'update';
        const handler = record.operations[req.operation];
        if (!handler) throw new CofreError(405, 'unsupported operation');
        const parsed = parseFields(record.fields ?? {}, raw, {
          rejectUnknown: record.rejectUnknownFields ?? false,
          freeForm: record.freeForm ?? false,
          applyDefaults: false,
        });
        req.data = parsed.data;
        const response = await handler(req);
        const warnings = [...(op === 'read' || op === 'list' ? [] : parsed.warnings), ...(response?.warnings ?? [])];
        const status = response?.status ?? (response === undefined ? 204 : 200);
        return { status, data: response?.data, warnings, errors: [], response };
      } catch (err) {
        if (!(err instanceof CofreError)) throw err;
        return { status: err.status, data: undefined, warnings: [], errors: [err.message], response: undefined };
      }
    }
    return { status: 404, data: undefined, warnings: [], errors: ['unsupported path'], response: undefined };
  }
}

/** KV asks nothing of the core's system view; any use of it in a KV test is a bug. */
export const kvSystemView: SystemView = {
  generatePassword: () => Promise.reject(new Error('KV does not generate passwords')),
  leaseTtls: () => {
    throw new Error('KV does not issue leases');
  },
};

/** A KV mount of the given version on a fresh SQLite file, plus a cleanup. */
export async function openKv(
  version: '1' | '2',
): Promise<{ kv: Harness; storage: Storage; close: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-kv-'));
  const storage = openSqliteStorage(path.join(dir, 'kv.db'));
  const backend = await kvFactory({ storage, mountPoint: 'secret/', options: { version }, system: kvSystemView });
  const close = async (): Promise<void> => {
    await storage.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { kv: new Harness(backend, storage), storage, close };
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend, Caller, Operation, Request, Response, SystemView } from '../../core/backend.js';
import { CofreError } from '../../core/errors.js';
import { compilePaths, type CompiledPath } from '../../core/mount-table.js';
import { prepareDispatch } from '../../core/request/dispatch.js';
import { matchPath, settleOperation } from '../../core/request/route.js';
import type { Storage } from '../../core/storage.js';
import { openSqliteStorage } from '../../storage/sqlite.js';
import { kvFactory } from './index.js';

/**
 * The engine's tests call its paths through the core's own route and dispatch steps (src/core/request/): the same
 * path matching, create vs update from the record's exists check, handler choice (405), field parsing with
 * defaults (400) and unknown-field warnings as the server. Only authorisation, audit and the token are left out:
 * the caller is given. CofreErrors become a status as the HTTP layer makes them; internal errors are rethrown so
 * tests see them.
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
  private readonly paths: CompiledPath[];

  constructor(
    readonly backend: Backend,
    readonly storage: Storage,
  ) {
    this.paths = compilePaths(backend);
  }

  /** 'write' is POST/PUT: the record's exists check turns it into create or update, as the router does. */
  async call(op: Operation | 'write', reqPath: string, call: Call = {}): Promise<Result> {
    const found = matchPath(this.paths, reqPath);
    if (!found)
      return { status: 404, data: undefined, warnings: [], errors: ['unsupported path'], response: undefined };
    const req: Request = {
      operation: op === 'write' ? 'update' : op,
      path: reqPath,
      params: found.params,
      data: {},
      raw: call.body ?? {},
      query: call.query ?? {},
      storage: this.storage,
      caller: call.caller ?? rootCaller,
      mountPoint: 'secret/',
      requestId: 'test-request',
      remoteAddress: '',
    };
    try {
      await settleOperation(found.record, req);
      const response = await prepareDispatch(found.record, req).run();
      const status = response?.status ?? (response === undefined ? 204 : 200);
      return { status, data: response?.data, warnings: response?.warnings ?? [], errors: [], response };
    } catch (err) {
      if (!(err instanceof CofreError)) throw err;
      return { status: err.status, data: undefined, warnings: [], errors: [err.message], response: undefined };
    }
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

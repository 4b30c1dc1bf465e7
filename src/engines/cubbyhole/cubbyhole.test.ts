import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Caller } from '../../core/backend.js';
import { cubbyholeKey, destroyCubbyhole } from '../../core/cubbyhole.js';
import type { Storage } from '../../core/storage.js';
import { openSqliteStorage } from '../../storage/sqlite.js';
import { Harness, kvSystemView, rootCaller } from '../kv/test-harness.js';
import { cubbyholeFactory } from './index.js';

/** A caller whose token hash is `hash` (the cubbyhole keys everything by it). */
const callerOf = (hash: string): Caller => ({ ...rootCaller, tokenId: hash, token: { ...rootCaller.token, hash } });

// Through the core's own route and dispatch steps (see the KV harness); the token is given, not checked.
describe('cubbyhole engine', () => {
  let dir: string;
  let storage: Storage;
  let cubby: Harness;
  const a = callerOf('a'.repeat(64));
  const b = callerOf('b'.repeat(64));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-cubbyhole-'));
    storage = openSqliteStorage(path.join(dir, 'c.db'));
    const backend = await cubbyholeFactory({ storage, mountPoint: 'cubbyhole/', options: {}, system: kvSystemView });
    cubby = new Harness(backend, storage);
  });
  after(async () => {
    await storage.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps each token’s entries under its own hash, where no other token’s paths lead', async () => {
    assert.equal((await cubby.call('write', 'x', { caller: a, body: { v: 'a' } })).status, 204);
    assert.equal((await cubby.call('write', 'x', { caller: b, body: { v: 'b' } })).status, 204);
    assert.deepEqual((await cubby.call('read', 'x', { caller: a })).data, { v: 'a' });
    assert.deepEqual((await cubby.call('read', 'x', { caller: b })).data, { v: 'b' });
    assert.ok(await storage.get(cubbyholeKey(a.tokenId, 'x')));
    // b naming a's prefix reaches only b's own "<a's hash>/x", which does not exist.
    assert.equal((await cubby.call('read', `${a.tokenId}/x`, { caller: b })).status, 404);
    assert.deepEqual((await cubby.call('list', '', { caller: b })).data, { keys: ['x'] });
  });

  it('answers as Vault’s: create vs update, missing data, folders in a listing, 404s', async () => {
    assert.equal((await cubby.call('write', 'dir/deep', { caller: a, body: { n: 1 } })).response, undefined);
    assert.equal((await cubby.call('write', 'empty', { caller: a, body: {} })).status, 400);
    assert.equal((await cubby.call('write', 'folder/', { caller: a, body: { n: 1 } })).status, 400);
    assert.deepEqual((await cubby.call('list', '', { caller: a })).data, { keys: ['dir/', 'x'] });
    assert.deepEqual((await cubby.call('list', 'dir', { caller: a })).data, { keys: ['deep'] });
    assert.equal((await cubby.call('list', 'nothing/', { caller: a })).status, 404);
    assert.equal((await cubby.call('read', 'missing', { caller: a })).status, 404);
    assert.equal((await cubby.call('delete', 'dir/deep', { caller: a })).status, 204);
    assert.equal((await cubby.call('read', 'dir/deep', { caller: a })).status, 404);
  });

  it('a write whose token was revoked while it was on its way takes itself back', async () => {
    // The revocation destroyed the cubbyhole between the write's authorisation and its landing.
    const system = { ...kvSystemView, tokenLive: async () => false };
    const late = new Harness(
      await cubbyholeFactory({ storage, mountPoint: 'cubbyhole/', options: {}, system }),
      storage,
    );
    const res = await late.call('write', 'late', { caller: a, body: { v: 1 } });
    assert.equal(res.status, 403);
    assert.equal(await storage.get(cubbyholeKey(a.tokenId, 'late')), undefined);
  });

  it('destroying a token’s cubbyhole removes all of it, nested folders too, and nothing of another’s', async () => {
    await cubby.call('write', 'one/two/three', { caller: a, body: { v: 3 } });
    await destroyCubbyhole(storage, a.tokenId);
    assert.deepEqual(await storage.list(cubbyholeKey(a.tokenId, '')), []);
    assert.equal((await cubby.call('read', 'x', { caller: a })).status, 404);
    assert.deepEqual((await cubby.call('read', 'x', { caller: b })).data, { v: 'b' });
    await destroyCubbyhole(storage, a.tokenId); // nothing left: a no-op, as a retried revocation needs
  });
});

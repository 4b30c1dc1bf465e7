import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kvFactory } from './index.js';
import { kvSystemView, openKv, type Harness } from './test-harness.js';

describe('kv v1', () => {
  let kv: Harness;
  let close: () => Promise<void>;
  before(async () => ({ kv, close } = await openKv('1')));
  after(() => close());

  it('is what a kv mount without a version option gets', async () => {
    const backend = await kvFactory({ storage: kv.storage, mountPoint: 'kv/', options: {}, system: kvSystemView });
    assert.equal(backend.type, 'kv');
    assert.equal(backend.paths.length, 1);
    assert.throws(() =>
      kvFactory({ storage: kv.storage, mountPoint: 'kv/', options: { version: '3' }, system: kvSystemView }),
    );
  });

  it('stores the whole body and reads it back', async () => {
    const w = await kv.call('write', 'app/db', { body: { user: 'a', pass: 's', nested: { n: 1 } } });
    assert.equal(w.status, 204);
    assert.deepEqual(w.warnings, [], 'free-form: no unknown-field warnings');
    const r = await kv.call('read', 'app/db');
    assert.equal(r.status, 200);
    assert.deepEqual(r.data, { user: 'a', pass: 's', nested: { n: 1 } });
    assert.deepEqual(r.response?.lease, { leaseId: '', ttl: 2764800, renewable: false });
    // an overwrite replaces the secret entirely
    await kv.call('write', 'app/db', { body: { user: 'b', ttl: '1h' } });
    const r2 = await kv.call('read', 'app/db');
    assert.deepEqual(r2.data, { user: 'b', ttl: '1h' });
    assert.equal(r2.response?.lease?.ttl, 3600);
  });

  it('tells create from update', async () => {
    const record = kv.backend.paths[0]!;
    const req = (path: string) => ({ path, params: { path }, storage: kv.storage }) as never;
    assert.equal(await record.exists!(req('app/db')), true);
    assert.equal(await record.exists!(req('app/none')), false);
  });

  it('refuses empty writes and answers 404 for missing secrets', async () => {
    assert.deepEqual((await kv.call('write', 'app/empty', { body: {} })).errors, ['missing data fields']);
    assert.deepEqual((await kv.call('write', '', { body: { a: 1 } })).errors, ['missing path']);
    assert.equal((await kv.call('read', 'app/none')).status, 404);
  });

  it('lists folders and deletes', async () => {
    await kv.call('write', 'app/web', { body: { a: 1 } });
    await kv.call('write', 'app/sub/x', { body: { a: 1 } });
    assert.deepEqual((await kv.call('list', 'app/')).data, { keys: ['db', 'sub/', 'web'] });
    assert.deepEqual((await kv.call('list', 'app')).data, { keys: ['db', 'sub/', 'web'] });
    assert.deepEqual((await kv.call('list', '')).data, { keys: ['app/'] });
    assert.equal((await kv.call('list', 'nothing/')).status, 404);
    assert.equal((await kv.call('delete', 'app/web')).status, 204);
    assert.equal((await kv.call('read', 'app/web')).status, 404);
    assert.equal((await kv.call('delete', 'app/web')).status, 204);
    assert.deepEqual((await kv.call('list', 'app/')).data, { keys: ['db', 'sub/'] });
  });
});

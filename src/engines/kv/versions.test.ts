import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openKv, type Harness } from './test-harness.js';

type Meta = {
  current_version: number;
  oldest_version: number;
  versions: Record<string, { deletion_time: string; destroyed: boolean; deleted_by: unknown }>;
};

describe('kv v2 delete/, undelete/, destroy/, config and version limits', () => {
  let kv: Harness;
  let close: () => Promise<void>;
  before(async () => ({ kv, close } = await openKv('2')));
  after(() => close());

  const write = (path: string, data: Record<string, unknown>) => kv.call('write', `data/${path}`, { body: { data } });
  const meta = async (path: string): Promise<Meta> => (await kv.call('read', `metadata/${path}`)).data as Meta;

  it('delete/ soft-deletes listed versions, undelete/ restores them', async () => {
    for (let i = 1; i <= 3; i++) await write('dv', { i });
    const del = await kv.call('write', 'delete/dv', { body: { versions: [1, 2, 42] } });
    assert.equal(del.status, 204);
    for (const v of ['1', '2']) {
      const r = await kv.call('read', 'data/dv', { query: { version: v } });
      assert.equal(r.status, 404);
      assert.equal(r.data?.data, null);
    }
    assert.equal((await kv.call('read', 'data/dv')).status, 200);
    const m = await meta('dv');
    assert.notEqual(m.versions['1']!.deletion_time, '');
    assert.deepEqual(m.versions['1']!.deleted_by, { actor: 'root', operation: 'update' });

    const und = await kv.call('write', 'undelete/dv', { body: { versions: '1,2' } });
    assert.equal(und.status, 204);
    assert.deepEqual((await kv.call('read', 'data/dv', { query: { version: '1' } })).data?.data, { i: 1 });
    const after = await meta('dv');
    assert.equal(after.versions['2']!.deletion_time, '');
    assert.equal(after.versions['2']!.deleted_by, null);
  });

  it('refuses an empty version list with Vault’s messages', async () => {
    assert.deepEqual((await kv.call('write', 'delete/dv', { body: {} })).errors, ['No version number provided']);
    assert.deepEqual((await kv.call('write', 'undelete/dv', { body: { versions: [] } })).errors, [
      'No version number provided',
    ]);
    assert.deepEqual((await kv.call('write', 'destroy/dv', { body: {} })).errors, ['no version number provided']);
    assert.equal((await kv.call('write', 'delete/dv', { body: { versions: ['x'] } })).status, 400);
    // a key that does not exist is no error
    assert.equal((await kv.call('write', 'delete/ghost', { body: { versions: [1] } })).status, 204);
    assert.equal((await kv.call('write', 'destroy/ghost', { body: { versions: [1] } })).status, 204);
  });

  it('destroy/ removes the data for good: 404 with destroyed true, undelete cannot bring it back', async () => {
    const d = await kv.call('write', 'destroy/dv', { body: { versions: [2] } });
    assert.equal(d.status, 204);
    const r = await kv.call('read', 'data/dv', { query: { version: '2' } });
    assert.equal(r.status, 404);
    assert.equal(r.data?.data, null);
    assert.equal((r.data?.metadata as { destroyed: boolean }).destroyed, true);
    assert.equal(await kv.storage.get('versions/dv/2'), undefined);
    await kv.call('write', 'undelete/dv', { body: { versions: [2] } });
    assert.equal((await kv.call('read', 'data/dv', { query: { version: '2' } })).status, 404);
    // a destroyed current version cannot be soft-deleted or patched either
    await kv.call('write', 'destroy/dv', { body: { versions: [3] } });
    assert.equal((await kv.call('delete', 'data/dv')).status, 204);
    assert.equal((await meta('dv')).versions['3']!.deletion_time, '');
    assert.equal((await kv.call('patch', 'data/dv', { body: { data: { a: 1 } } })).status, 404);
  });

  it('config reads back with Go durations and validates input', async () => {
    const empty = await kv.call('read', 'config');
    assert.deepEqual(empty.data, { cas_required: false, delete_version_after: '0s', max_versions: 0 });
    await kv.call('write', 'config', { body: { max_versions: 5, delete_version_after: '3h25m19s' } });
    const set = await kv.call('read', 'config');
    assert.deepEqual(set.data, { cas_required: false, delete_version_after: '3h25m19s', max_versions: 5 });
    await kv.call('write', 'config', { body: { delete_version_after: -1 } });
    assert.equal((await kv.call('read', 'config')).data?.delete_version_after, '-1s');
    await kv.call('write', 'config', { body: { delete_version_after: '0s', max_versions: 0 } });
    assert.deepEqual((await kv.call('read', 'config')).data, {
      cas_required: false,
      delete_version_after: '0s',
      max_versions: 0,
    });
    assert.equal((await kv.call('write', 'config', { body: { max_versions: 'many' } })).status, 400);
    assert.equal((await kv.call('write', 'config', { body: { max_versions: -3 } })).status, 400);
    assert.equal((await kv.call('write', 'config', { body: { delete_version_after: 'soon' } })).status, 400);
    assert.equal((await kv.call('list', 'config')).status, 405);
  });

  it('keeps 10 versions by default and trims the oldest data', async () => {
    for (let i = 1; i <= 12; i++) await write('trim10', { i });
    const m = await meta('trim10');
    assert.equal(m.current_version, 12);
    assert.equal(m.oldest_version, 3);
    assert.deepEqual(
      Object.keys(m.versions)
        .map(Number)
        .sort((a, b) => a - b),
      [3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    assert.equal(await kv.storage.get('versions/trim10/1'), undefined);
    assert.equal(await kv.storage.get('versions/trim10/2'), undefined);
    assert.notEqual(await kv.storage.get('versions/trim10/3'), undefined);
    assert.equal((await kv.call('read', 'data/trim10', { query: { version: '2' } })).status, 404);
  });

  it('oldest_version stays 0 until the first trim, as in Vault', async () => {
    for (let i = 1; i <= 3; i++) await write('young', { i });
    assert.equal((await meta('young')).oldest_version, 0);
  });

  it('max_versions: the larger of key and mount setting, lowering it trims several at once', async () => {
    await kv.call('write', 'metadata/trim', { body: { max_versions: 4 } });
    for (let i = 1; i <= 6; i++) await write('trim', { i });
    let m = await meta('trim');
    assert.deepEqual(Object.keys(m.versions).map(Number), [3, 4, 5, 6]);
    assert.equal(m.oldest_version, 3);

    await kv.call('write', 'metadata/trim', { body: { max_versions: 2 } });
    await write('trim', { i: 7 });
    m = await meta('trim');
    assert.deepEqual(Object.keys(m.versions).map(Number), [6, 7]);
    for (const n of [3, 4, 5]) assert.equal(await kv.storage.get(`versions/trim/${n}`), undefined);

    // the mount's larger max_versions wins over the key's smaller one
    await kv.call('write', 'config', { body: { max_versions: 3 } });
    try {
      await write('trim', { i: 8 });
      assert.deepEqual(Object.keys((await meta('trim')).versions).map(Number), [6, 7, 8]);
    } finally {
      await kv.call('write', 'config', { body: { max_versions: 0 } });
    }
  });

  it('delete_version_after schedules deletion; the version is readable until then', async () => {
    await kv.call('write', 'metadata/ttl', { body: { delete_version_after: '1h' } });
    const w = await write('ttl', { a: 1 });
    const created = Date.parse(String(w.data?.created_time));
    assert.equal(Date.parse(String(w.data?.deletion_time)) - created, 3600_000);
    assert.equal((await kv.call('read', 'data/ttl')).status, 200);
    assert.equal((await kv.call('read', 'metadata/ttl')).data?.delete_version_after, '1h0m0s');

    // the smaller of mount and key wins
    await kv.call('write', 'config', { body: { delete_version_after: '30m' } });
    const w2 = await write('ttl', { a: 2 });
    assert.equal(Date.parse(String(w2.data?.deletion_time)) - Date.parse(String(w2.data?.created_time)), 1800_000);
    // a negative mount setting disables it everywhere
    await kv.call('write', 'config', { body: { delete_version_after: '-1s' } });
    assert.equal((await write('ttl', { a: 3 })).data?.deletion_time, '');
    await kv.call('write', 'config', { body: { delete_version_after: 0 } });

    // an elapsed deletion_time reads as deleted
    await kv.call('write', 'metadata/ttl-short', { body: { delete_version_after: 1 } });
    await write('ttl-short', { a: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await kv.call('read', 'data/ttl-short')).status, 404);
    // undelete schedules a fresh deletion from now
    await kv.call('write', 'undelete/ttl-short', { body: { versions: [1] } });
    assert.equal((await kv.call('read', 'data/ttl-short')).status, 200);
  });
});

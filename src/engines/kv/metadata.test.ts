import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openKv, type Harness } from './test-harness.js';

describe('kv v2 metadata/', () => {
  let kv: Harness;
  let close: () => Promise<void>;
  before(async () => ({ kv, close } = await openKv('2')));
  after(() => close());

  const write = (path: string, data: Record<string, unknown>) => kv.call('write', `data/${path}`, { body: { data } });

  it('reads the metadata of a key in Vault’s shape', async () => {
    await write('svc/api', { a: 1 });
    await write('svc/api', { a: 2 });
    const res = await kv.call('read', 'metadata/svc/api');
    assert.equal(res.status, 200);
    const d = res.data!;
    assert.deepEqual(Object.keys(d).sort(), [
      'cas_required',
      'created_time',
      'current_version',
      'custom_metadata',
      'delete_version_after',
      'last_updated_by',
      'max_versions',
      'oldest_version',
      'updated_time',
      'versions',
    ]);
    assert.equal(d.current_version, 2);
    assert.equal(d.oldest_version, 0);
    assert.equal(d.max_versions, 0);
    assert.equal(d.cas_required, false);
    assert.equal(d.delete_version_after, '0s');
    assert.equal(d.custom_metadata, null);
    assert.deepEqual(d.last_updated_by, { actor: 'root', operation: 'update' });
    const versions = d.versions as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(versions), ['1', '2']);
    assert.equal(versions['1']!.created_time, d.created_time);
    assert.equal(versions['2']!.created_time, d.updated_time);
    assert.deepEqual(versions['1']!.created_by, { actor: 'root', operation: 'create' });
    assert.equal(versions['1']!.deletion_time, '');
    assert.equal(versions['1']!.destroyed, false);
    assert.equal(versions['1']!.deleted_by, null);
    assert.equal((await kv.call('read', 'metadata/svc/none')).status, 404);
  });

  it('lists keys and folders, 404 when empty', async () => {
    await write('svc', { a: 1 });
    await write('svc/web/x', { a: 1 });
    assert.deepEqual((await kv.call('list', 'metadata/svc/')).data, { keys: ['api', 'web/'] });
    assert.deepEqual((await kv.call('list', 'metadata/svc')).data, { keys: ['api', 'web/'] });
    const root = await kv.call('list', 'metadata/');
    assert.deepEqual(root.data?.keys, ['svc', 'svc/']);
    assert.deepEqual((await kv.call('list', 'metadata')).data?.keys, ['svc', 'svc/']);
    assert.equal((await kv.call('list', 'metadata/empty/')).status, 404);
  });

  it('exclude_deleted leaves out keys whose current version is deleted', async () => {
    await write('ex/alive', { a: 1 });
    await write('ex/dead', { a: 1 });
    await write('ex/sub/x', { a: 1 });
    await kv.call('delete', 'data/ex/dead');
    assert.deepEqual((await kv.call('list', 'metadata/ex/')).data?.keys, ['alive', 'dead', 'sub/']);
    const filtered = await kv.call('list', 'metadata/ex/', { query: { exclude_deleted: 'true' } });
    assert.deepEqual(filtered.data?.keys, ['alive', 'sub/']);
  });

  it('writes settings and custom_metadata without creating a version', async () => {
    const res = await kv.call('write', 'metadata/meta/only', {
      body: {
        max_versions: 3,
        cas_required: true,
        delete_version_after: '3h25m19s',
        custom_metadata: { owner: 'jdoe', n: 5 },
      },
    });
    assert.equal(res.status, 204);
    const d = (await kv.call('read', 'metadata/meta/only')).data!;
    assert.equal(d.current_version, 0);
    assert.deepEqual(d.versions, {});
    assert.equal(d.max_versions, 3);
    assert.equal(d.cas_required, true);
    assert.equal(d.delete_version_after, '3h25m19s');
    assert.deepEqual(d.custom_metadata, { owner: 'jdoe', n: '5' });
    assert.notEqual(d.created_time, '');
    assert.equal((await kv.call('read', 'data/meta/only')).status, 404);

    // custom_metadata shows on data reads and writes
    const w = await kv.call('write', 'data/meta/only', { body: { options: { cas: 0 }, data: { s: 1 } } });
    assert.deepEqual(w.data?.custom_metadata, { owner: 'jdoe', n: '5' });
    const r = await kv.call('read', 'data/meta/only');
    assert.deepEqual((r.data?.metadata as Record<string, unknown>).custom_metadata, { owner: 'jdoe', n: '5' });

    // a write replaces custom_metadata as a whole; an empty map reads back as null
    await kv.call('write', 'metadata/meta/only', { body: { custom_metadata: { team: 'x' } } });
    assert.deepEqual((await kv.call('read', 'metadata/meta/only')).data?.custom_metadata, { team: 'x' });
    await kv.call('write', 'metadata/meta/only', { body: { custom_metadata: {} } });
    assert.equal((await kv.call('read', 'metadata/meta/only')).data?.custom_metadata, null);

    // no settings at all: nothing is written
    assert.equal((await kv.call('write', 'metadata/meta/nothing', { body: {} })).status, 204);
    assert.equal((await kv.call('read', 'metadata/meta/nothing')).status, 404);
    assert.deepEqual((await kv.call('write', 'metadata/', { body: { max_versions: 1 } })).errors, ['missing path']);
    assert.equal((await kv.call('write', 'metadata/x', { body: { delete_version_after: '-1s' } })).status, 400);
  });

  it('validates custom_metadata like Vault', async () => {
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    const many = await kv.call('write', 'metadata/cm', { body: { custom_metadata: tooMany } });
    assert.equal(many.status, 400);
    assert.equal(
      many.errors[0],
      '1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most 64 keys, provided 65\n\n',
    );
    const bad = await kv.call('write', 'metadata/cm', {
      body: { custom_metadata: { ['k'.repeat(129)]: 'v', empty: '', ctl: 'a\u0007b' } },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.errors[0]!, /^3 errors occurred:/);
    assert.match(bad.errors[0]!, /length of key "k+" is 129 but must be 0 < len\(key\) <= 128/);
    assert.match(bad.errors[0]!, /length of value for key "empty" is 0 but must be 0 < len\(value\) <= 512/);
    assert.match(bad.errors[0]!, /value for key "ctl" contains unprintable characters/);
    assert.ok(!bad.errors[0]!.includes('a\u0007b'), 'values are not echoed');
    const nested = await kv.call('write', 'metadata/cm', { body: { custom_metadata: { a: { b: 1 } } } });
    assert.equal(nested.status, 400);
    const long = await kv.call('write', 'metadata/cm', { body: { custom_metadata: { a: 'é'.repeat(257) } } });
    assert.match(long.errors[0]!, /is 514 but/); // bytes, as Go's len()
  });

  it('warns when a key turns cas_required off while the mount requires it', async () => {
    await kv.call('write', 'config', { body: { cas_required: true } });
    try {
      const res = await kv.call('write', 'metadata/warned', { body: { cas_required: false } });
      assert.equal(res.status, 200);
      assert.deepEqual(res.warnings, [
        '"cas_required" set to false, but is mandated by backend config. This value will be ignored.',
      ]);
    } finally {
      await kv.call('write', 'config', { body: { cas_required: false } });
    }
  });

  it('patches settings and merges custom_metadata', async () => {
    await kv.call('write', 'metadata/pm', {
      body: { max_versions: 5, cas_required: true, custom_metadata: { a: '1', b: '2' } },
    });
    const res = await kv.call('patch', 'metadata/pm', {
      body: { max_versions: 7, cas_required: null, custom_metadata: { a: null, c: 3 }, delete_version_after: '1m' },
    });
    assert.equal(res.status, 204);
    const d = (await kv.call('read', 'metadata/pm')).data!;
    assert.equal(d.max_versions, 7);
    assert.equal(d.cas_required, true, 'a top-level null leaves the setting as it is');
    assert.equal(d.delete_version_after, '1m0s');
    assert.deepEqual(d.custom_metadata, { b: '2', c: '3' });
    await kv.call('patch', 'metadata/pm', { body: { custom_metadata: { b: null, c: null } } });
    assert.equal((await kv.call('read', 'metadata/pm')).data?.custom_metadata, null);
    assert.equal((await kv.call('patch', 'metadata/pm-none', { body: { max_versions: 1 } })).status, 404);
    assert.deepEqual((await kv.call('patch', 'metadata/', { body: { max_versions: 1 } })).errors, ['missing path']);
    const invalid = await kv.call('patch', 'metadata/pm', { body: { custom_metadata: { '': 'x' } } });
    assert.equal(invalid.status, 400);
  });

  it('DELETE removes the metadata and every version', async () => {
    await write('gone', { a: 1 });
    await write('gone', { a: 2 });
    await kv.call('write', 'destroy/gone', { body: { versions: [1] } });
    const res = await kv.call('delete', 'metadata/gone');
    assert.equal(res.status, 204);
    assert.equal((await kv.call('read', 'metadata/gone')).status, 404);
    assert.equal((await kv.call('read', 'data/gone')).status, 404);
    assert.equal(await kv.storage.get('versions/gone/2'), undefined);
    assert.equal(await kv.storage.get('metadata/gone'), undefined);
    assert.equal((await kv.call('delete', 'metadata/gone')).status, 204);
    // the key starts over at version 1
    assert.equal((await write('gone', { a: 3 })).data?.version, 1);
  });
});

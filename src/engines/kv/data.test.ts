import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openKv, type Harness } from './test-harness.js';

describe('kv v2 data/', () => {
  let kv: Harness;
  let close: () => Promise<void>;
  before(async () => ({ kv, close } = await openKv('2')));
  after(() => close());

  it('writes versions and reads the latest or a chosen one', async () => {
    const w1 = await kv.call('write', 'data/app/db', { body: { data: { user: 'a', pass: 's1' } } });
    assert.equal(w1.status, 200);
    assert.equal(w1.response?.data?.version, 1);
    assert.equal(w1.data?.deletion_time, '');
    assert.equal(w1.data?.destroyed, false);
    assert.equal(w1.data?.custom_metadata, null);
    assert.match(String(w1.data?.created_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const w2 = await kv.call('write', 'data/app/db', { body: { data: { user: 'a', pass: 's2' } } });
    assert.equal(w2.data?.version, 2);

    const latest = await kv.call('read', 'data/app/db');
    assert.equal(latest.status, 200);
    assert.deepEqual(latest.data?.data, { user: 'a', pass: 's2' });
    assert.deepEqual(Object.keys(latest.data?.metadata as object).sort(), [
      'created_time',
      'custom_metadata',
      'deletion_time',
      'destroyed',
      'version',
    ]);
    assert.equal((latest.data?.metadata as { version: number }).version, 2);

    const first = await kv.call('read', 'data/app/db', { query: { version: '1' } });
    assert.deepEqual(first.data?.data, { user: 'a', pass: 's1' });
    assert.equal((first.data?.metadata as { version: number }).version, 1);

    // version=0 means the latest, as in Vault
    const zero = await kv.call('read', 'data/app/db', { query: { version: '0' } });
    assert.equal((zero.data?.metadata as { version: number }).version, 2);
  });

  it('answers 404 for a missing key or version and 400 for a bad version', async () => {
    assert.equal((await kv.call('read', 'data/nope')).status, 404);
    assert.equal((await kv.call('read', 'data/app/db', { query: { version: '9' } })).status, 404);
    const bad = await kv.call('read', 'data/app/db', { query: { version: 'x' } });
    assert.equal(bad.status, 400);
  });

  it('uses create for new keys and update for existing ones', async () => {
    const created = await kv.call('write', 'data/fresh', { body: { data: { a: 1 } } });
    assert.equal(created.response && created.status, 200);
    const record = kv.backend.paths.find((p) => p.pattern.startsWith('data/'))!;
    const req = { params: { path: 'fresh' }, storage: kv.storage } as never;
    assert.equal(await record.exists!(req), true);
    assert.equal(await record.exists!({ params: { path: 'absent' }, storage: kv.storage } as never), false);
  });

  it('requires data and a path', async () => {
    const noData = await kv.call('write', 'data/x', { body: {} });
    assert.equal(noData.status, 400);
    assert.deepEqual(noData.errors, ['no data provided']);
    const noPath = await kv.call('write', 'data/', { body: { data: { a: 1 } } });
    assert.equal(noPath.status, 400);
    assert.deepEqual(noPath.errors, ['missing path']);
    const trailing = await kv.call('read', 'data/app/');
    assert.equal(trailing.status, 404);
    assert.match(trailing.warnings[0]!, /Invalid path for a versioned K\/V secrets engine.*vault kv get/);
    const root = await kv.call('read', 'data');
    assert.equal(root.status, 404);
    assert.deepEqual(root.warnings, ['Non-listing operations on the root of a K/V v2 mount are not supported.']);
    const elsewhere = await kv.call('write', 'foo', { body: { a: 1 } });
    assert.equal(elsewhere.status, 404);
    assert.match(elsewhere.warnings[0]!, /vault kv put/);
  });

  it('never puts secret values in errors', async () => {
    const res = await kv.call('write', 'data/leak', { body: { data: 'super-secret-value' } });
    assert.equal(res.status, 400);
    assert.ok(!res.errors.join(' ').includes('super-secret-value'));
  });

  describe('check-and-set', () => {
    it('cas=0 writes only when the key does not exist', async () => {
      const first = await kv.call('write', 'data/cas/a', { body: { options: { cas: 0 }, data: { v: 1 } } });
      assert.equal(first.status, 200);
      const again = await kv.call('write', 'data/cas/a', { body: { options: { cas: 0 }, data: { v: 2 } } });
      assert.equal(again.status, 400);
      assert.deepEqual(again.errors, ['check-and-set parameter did not match the current version']);
    });

    it('a matching cas writes, a stale one is refused', async () => {
      const ok = await kv.call('write', 'data/cas/a', { body: { options: { cas: 1 }, data: { v: 2 } } });
      assert.equal(ok.data?.version, 2);
      const stale = await kv.call('write', 'data/cas/a', { body: { options: { cas: 1 }, data: { v: 3 } } });
      assert.equal(stale.status, 400);
      assert.deepEqual(stale.errors, ['check-and-set parameter did not match the current version']);
      const asString = await kv.call('write', 'data/cas/a', { body: { options: { cas: '2' }, data: { v: 3 } } });
      assert.equal(asString.data?.version, 3);
      const junk = await kv.call('write', 'data/cas/a', { body: { options: { cas: 'abc' }, data: { v: 3 } } });
      assert.deepEqual(junk.errors, ['error parsing check-and-set parameter']);
    });

    it('cas_required on the key demands cas', async () => {
      await kv.call('write', 'metadata/cas/req', { body: { cas_required: true } });
      const missing = await kv.call('write', 'data/cas/req', { body: { data: { v: 1 } } });
      assert.equal(missing.status, 400);
      assert.deepEqual(missing.errors, ['check-and-set parameter required for this call']);
      // metadata written alone has current_version 0, so cas=0 is the first write
      const ok = await kv.call('write', 'data/cas/req', { body: { options: { cas: 0 }, data: { v: 1 } } });
      assert.equal(ok.status, 200);
    });

    it('cas_required on the mount demands cas everywhere', async () => {
      await kv.call('write', 'config', { body: { cas_required: true } });
      try {
        const missing = await kv.call('write', 'data/cas/mount', { body: { data: { v: 1 } } });
        assert.deepEqual(missing.errors, ['check-and-set parameter required for this call']);
        const ok = await kv.call('write', 'data/cas/mount', { body: { options: { cas: 0 }, data: { v: 1 } } });
        assert.equal(ok.status, 200);
        const patch = await kv.call('patch', 'data/cas/mount', { body: { data: { w: 2 } } });
        assert.deepEqual(patch.errors, ['check-and-set parameter required for this call']);
      } finally {
        await kv.call('write', 'config', { body: { cas_required: false } });
      }
    });
  });

  describe('patch', () => {
    it('merges into the current version as a JSON merge patch', async () => {
      await kv.call('write', 'data/p', { body: { data: { keep: 'k', drop: 'd', nested: { a: 1, b: 2 }, list: [1] } } });
      const res = await kv.call('patch', 'data/p', {
        body: { data: { drop: null, nested: { b: null, c: 3 }, list: [2, 3], added: true } },
      });
      assert.equal(res.status, 200);
      assert.equal(res.data?.version, 2);
      const read = await kv.call('read', 'data/p');
      assert.deepEqual(read.data?.data, { keep: 'k', nested: { a: 1, c: 3 }, list: [2, 3], added: true });
    });

    it('keeps "__proto__" as an ordinary key', async () => {
      await kv.call('write', 'data/proto', { body: JSON.parse('{"data":{"__proto__":{"a":1},"b":2}}') });
      await kv.call('patch', 'data/proto', { body: JSON.parse('{"data":{"__proto__":{"c":3}}}') });
      const read = await kv.call('read', 'data/proto');
      assert.deepEqual(Object.keys(read.data?.data as object), ['__proto__', 'b']);
      const sub = await kv.call('read', 'subkeys/proto');
      assert.deepEqual(JSON.stringify(sub.data?.subkeys), '{"__proto__":{"a":null,"c":null},"b":null}');
    });

    it('honours cas', async () => {
      const stale = await kv.call('patch', 'data/p', { body: { options: { cas: 1 }, data: { x: 1 } } });
      assert.deepEqual(stale.errors, ['check-and-set parameter did not match the current version']);
      const ok = await kv.call('patch', 'data/p', { body: { options: { cas: 2 }, data: { x: 1 } } });
      assert.equal(ok.data?.version, 3);
    });

    it('answers 404 for a missing key and 404 with metadata for a deleted current version', async () => {
      assert.equal((await kv.call('patch', 'data/none', { body: { data: { a: 1 } } })).status, 404);
      assert.deepEqual((await kv.call('patch', 'data/p', { body: {} })).errors, ['no data provided']);
      await kv.call('delete', 'data/p');
      const res = await kv.call('patch', 'data/p', { body: { data: { a: 1 } } });
      assert.equal(res.status, 404);
      assert.equal(res.data?.version, 3);
      assert.notEqual(res.data?.deletion_time, '');
      assert.equal(res.data?.destroyed, false);
    });
  });

  it('DELETE soft-deletes the latest version: 404 with data null and metadata', async () => {
    await kv.call('write', 'data/soft', { body: { data: { a: 1 } } });
    await kv.call('write', 'data/soft', { body: { data: { a: 2 } } });
    const del = await kv.call('delete', 'data/soft');
    assert.equal(del.status, 204);
    const read = await kv.call('read', 'data/soft');
    assert.equal(read.status, 404);
    assert.equal(read.data?.data, null);
    const metadata = read.data?.metadata as Record<string, unknown>;
    assert.equal(metadata.version, 2);
    assert.notEqual(metadata.deletion_time, '');
    assert.equal(metadata.destroyed, false);
    // the older version is untouched
    assert.deepEqual((await kv.call('read', 'data/soft', { query: { version: '1' } })).data?.data, { a: 1 });
    // deleting again, or deleting a missing key, is still 204
    assert.equal((await kv.call('delete', 'data/soft')).status, 204);
    assert.equal((await kv.call('delete', 'data/never')).status, 204);
    // a new write after a delete is a fresh readable version
    const w = await kv.call('write', 'data/soft', { body: { data: { a: 3 } } });
    assert.equal(w.data?.version, 3);
    assert.deepEqual((await kv.call('read', 'data/soft')).data?.data, { a: 3 });
  });
});

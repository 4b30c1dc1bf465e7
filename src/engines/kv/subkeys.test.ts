import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openKv, type Harness } from './test-harness.js';

describe('kv v2 subkeys/', () => {
  let kv: Harness;
  let close: () => Promise<void>;
  before(async () => {
    ({ kv, close } = await openKv('2'));
    await kv.call('write', 'data/sk', { body: { data: { only: 'v1' } } });
    await kv.call('write', 'data/sk', {
      body: { data: { foo: 'abc', bar: { baz: 'def', deep: { x: { y: 1 } } }, quux: {}, list: [1, { a: 2 }] } },
    });
  });
  after(() => close());

  it('replaces every leaf with null, keeping the nesting', async () => {
    const res = await kv.call('read', 'subkeys/sk');
    assert.equal(res.status, 200);
    assert.deepEqual(res.data?.subkeys, {
      foo: null,
      bar: { baz: null, deep: { x: { y: null } } },
      quux: null,
      list: null,
    });
    const metadata = res.data?.metadata as Record<string, unknown>;
    assert.equal(metadata.version, 2);
    assert.equal(metadata.deletion_time, '');
    assert.equal(metadata.custom_metadata, null);
  });

  it('limits the depth', async () => {
    const one = await kv.call('read', 'subkeys/sk', { query: { depth: '1' } });
    assert.deepEqual(one.data?.subkeys, { foo: null, bar: null, quux: null, list: null });
    const two = await kv.call('read', 'subkeys/sk', { query: { depth: '2' } });
    assert.deepEqual(two.data?.subkeys, { foo: null, bar: { baz: null, deep: null }, quux: null, list: null });
  });

  it('reads a chosen version, 404s like data/', async () => {
    const v1 = await kv.call('read', 'subkeys/sk', { query: { version: '1' } });
    assert.deepEqual(v1.data?.subkeys, { only: null });
    assert.equal((await kv.call('read', 'subkeys/sk', { query: { version: '7' } })).status, 404);
    assert.equal((await kv.call('read', 'subkeys/missing')).status, 404);
    await kv.call('write', 'delete/sk', { body: { versions: [1] } });
    const deleted = await kv.call('read', 'subkeys/sk', { query: { version: '1' } });
    assert.equal(deleted.status, 404);
    assert.equal(deleted.data?.subkeys, null);
    assert.notEqual((deleted.data?.metadata as Record<string, unknown>).deletion_time, '');
  });
});

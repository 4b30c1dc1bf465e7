import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyLocks } from './store.js';
import { openKv, type Harness } from './test-harness.js';

describe('kv v2 concurrency', () => {
  let kv: Harness;
  let close: () => Promise<void>;
  before(async () => ({ kv, close } = await openKv('2')));
  after(() => close());

  it('concurrent cas writes to one key: exactly one wins', async () => {
    await kv.call('write', 'data/race', { body: { data: { n: 0 } } });
    const attempts = Array.from({ length: 20 }, (_, i) =>
      kv.call('write', 'data/race', { body: { options: { cas: 1 }, data: { n: i + 1 } } }),
    );
    const results = await Promise.all(attempts);
    const winners = results.filter((r) => r.status === 200);
    assert.equal(winners.length, 1);
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 400);
      assert.deepEqual(r.errors, ['check-and-set parameter did not match the current version']);
    }
    const meta = await kv.call('read', 'metadata/race');
    assert.equal(meta.data?.current_version, 2);
  });

  it('concurrent cas=0 creates: exactly one wins', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        kv.call('write', 'data/fresh-race', { body: { options: { cas: 0 }, data: { n: i } } }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 200).length, 1);
  });

  it('concurrent writes without cas all land as distinct versions, reads never fail', async () => {
    const writes = Array.from({ length: 25 }, (_, i) => kv.call('write', 'data/busy', { body: { data: { n: i } } }));
    const reads = Array.from({ length: 25 }, () => kv.call('read', 'data/busy'));
    const [written, read] = await Promise.all([Promise.all(writes), Promise.all(reads)]);
    assert.deepEqual(
      written.map((r) => r.data?.version).sort((a, b) => Number(a) - Number(b)),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    for (const r of read) assert.ok(r.status === 200 || r.status === 404);
    const meta = await kv.call('read', 'metadata/busy');
    assert.equal(meta.data?.current_version, 25);
    assert.equal(Object.keys(meta.data?.versions as object).length, 10);
  });

  it('KeyLocks serializes per key and lets other keys run', async () => {
    const locks = new KeyLocks();
    const order: string[] = [];
    const slow = locks.run('a', async () => {
      order.push('a1 start');
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push('a1 end');
    });
    const other = locks.run('b', async () => void order.push('b'));
    const next = locks.run('a', async () => void order.push('a2'));
    const failing = locks.run('a', async () => {
      throw new Error('boom');
    });
    const afterFailure = locks.run('a', async () => 'still runs');
    await Promise.all([slow, other, next]);
    await assert.rejects(failing, /boom/);
    assert.equal(await afterFailure, 'still runs');
    assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONFLICT_ATTEMPTS } from '../../core/conflict-retry.js';
import type { Storage, StorageOp } from '../../core/storage.js';
import { openSqliteStorage } from '../../storage/sqlite.js';
import { kvFactory } from './index.js';
import { KeyLocks } from './store.js';
import { Harness, kvSystemView, openKv } from './test-harness.js';

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

  // Another node, on a store both write: it changes the key's metadata between this node's read and its commit,
  // on the first `meddles` commits that check it. The store is a real SQLite file; only the timing is forced.
  async function withMeddler(meddles: number) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-kv-meddle-'));
    const store = openSqliteStorage(path.join(dir, 'kv.db'));
    let checked = 0;
    const storage: Storage = {
      get: (key) => store.get(key),
      put: (key, value) => store.put(key, value),
      delete: (key) => store.delete(key),
      list: (prefix) => store.list(prefix),
      transaction: async (ops: StorageOp[]) => {
        // Checks that expect metadata (not the first write's "no entry yet").
        const check = ops.find((op) => op.op === 'check' && 'value' in op && op.value !== null);
        if (check && checked++ < meddles) {
          const meta = JSON.parse(Buffer.from((await store.get(check.key))!).toString());
          meta.custom_metadata = { changed_by: `other node, ${checked}` };
          await store.put(check.key, Buffer.from(JSON.stringify(meta)));
        }
        return store.transaction(ops);
      },
      close: () => store.close(),
    };
    const backend = await kvFactory({
      storage,
      mountPoint: 'secret/',
      options: { version: '2' },
      system: kvSystemView,
    });
    const harness = new Harness(backend, storage);
    await harness.call('write', 'data/contested', { body: { data: { v: 'first' } } });
    return {
      kv: harness,
      attempts: () => checked,
      close: async () => {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  it('a change that lost a race with another writer is made again on top of what that writer stored', async () => {
    const { kv: contested, attempts, close: done } = await withMeddler(3);
    const write = await contested.call('write', 'data/contested', { body: { data: { v: 'second' } } });
    assert.equal(write.status, 200, write.errors.join());
    assert.equal(write.data?.version, 2);
    assert.equal(attempts(), 4, 'refused three times, made the fourth');
    const meta = await contested.call('read', 'metadata/contested');
    assert.deepEqual(meta.data?.custom_metadata, { changed_by: 'other node, 3' }, "the other writer's change is kept");
    assert.deepEqual((await contested.call('read', 'data/contested')).data?.data, { v: 'second' });
    await done();
  });

  it('a change refused by every try answers 409 and writes nothing', async () => {
    const { kv: contested, attempts, close: done } = await withMeddler(Infinity);
    const write = await contested.call('write', 'data/contested', { body: { data: { v: 'never' } } });
    assert.equal(write.status, 409);
    assert.match(write.errors.join(), /kept changing on other nodes/);
    assert.equal(attempts(), CONFLICT_ATTEMPTS);
    const meta = await contested.call('read', 'metadata/contested');
    assert.equal(meta.data?.current_version, 1);
    const read = await contested.call('read', 'data/contested');
    assert.deepEqual(read.data?.data, { v: 'first' });
    await done();
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { Barrier } from '../src/core/barrier.js';
import { openPostgresStorage, type PostgresStorage } from '../src/storage/postgres.js';

/**
 * The read cache of two nodes on one PostgreSQL, wired as the core wires it (each node's barrier drops the keys the
 * other commits). A node keeps what it wrote in its cache unless the other node changed that key meanwhile
 * (src/core/read-cache.ts); these races try to leave a value cached that the other node already replaced or
 * deleted, as a token revoked on one node and still served by the other would be.
 */
describe('read cache of two nodes on one PostgreSQL', () => {
  let db: TestDatabase;
  const stores: PostgresStorage[] = [];

  before(async () => {
    db = await startPostgres();
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    await db?.stop();
  });

  async function node(name: string, rootKey: Buffer, first: boolean) {
    const store = await openPostgresStorage({ connectionUrl: db.url, table: 'coherence', nodeId: name });
    stores.push(store);
    const barrier = new Barrier(store);
    if (first) await barrier.initialize(rootKey);
    else await barrier.unseal(rootKey);
    const heard = new Set<string>();
    await store.watchChanges((keys) => {
      if (keys === undefined) return barrier.invalidateAll();
      for (const key of keys) {
        barrier.invalidate(key);
        heard.add(key);
      }
    });
    return { barrier, heard };
  }

  /** Waits until each node heard a marker the other wrote after everything else: it heard all before it too. */
  async function settle(nodes: { barrier: Barrier; heard: Set<string> }[], round: number) {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await a.barrier.put(`marker/a/${round}`, Buffer.from('1'));
    await b.barrier.put(`marker/b/${round}`, Buffer.from('1'));
    const deadline = Date.now() + 10_000;
    while (!(b.heard.has(`marker/a/${round}`) && a.heard.has(`marker/b/${round}`))) {
      if (Date.now() > deadline) throw new Error('the markers were not heard within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('never serves a value the other node overwrote or deleted while its own write or read was on the way', async () => {
    const rootKey = randomBytes(32);
    const a = await node('coherence-a', rootKey, true);
    const b = await node('coherence-b', rootKey, false);
    const keys = ['sys/token/id/t0', 'sys/token/id/t1', 'kv/meta/x'];
    const show = (v: Uint8Array | undefined) => (v === undefined ? '<none>' : Buffer.from(v).toString());
    for (let round = 0; round < 60; round++) {
      const work: Promise<unknown>[] = [];
      for (const [i, key] of keys.entries()) {
        // Both nodes write the same key at once, one of them sometimes deletes it (a revocation), and reads of
        // it on both nodes run across the writes and may fill their caches.
        work.push(a.barrier.put(key, Buffer.from(`a${round}`)));
        work.push(a.barrier.get(key), b.barrier.get(key));
        work.push((round + i) % 3 === 0 ? b.barrier.delete(key) : b.barrier.put(key, Buffer.from(`b${round}`)));
        work.push(a.barrier.get(key), b.barrier.get(key));
      }
      await Promise.all(work);
      await settle([a, b], round);
      for (const key of keys) {
        const stored = show(await a.barrier.uncached().get(key));
        assert.equal(show(await a.barrier.get(key)), stored, `round ${round}: node a serves ${key} as stored`);
        assert.equal(show(await b.barrier.get(key)), stored, `round ${round}: node b serves ${key} as stored`);
      }
    }
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { inspect } from 'node:util';
import { Barrier } from '../src/core/barrier.js';
import { StorageConflictError } from '../src/core/storage.js';
import { StorageView } from '../src/core/storage-view.js';
import { openPostgresStorage, type PostgresStorage } from '../src/storage/postgres.js';

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString() : b);

/**
 * The read cache of two nodes on one PostgreSQL, wired as the core wires it (each node's barrier drops the keys the
 * other commits). A node keeps what it wrote in its cache unless the other node changed that key meanwhile
 * (src/core/read-cache.ts); these races try to leave a value cached that the other node already replaced or
 * deleted, as a token revoked on one node and still served by the other would be.
 *
 * And a write refused because the other node changed what it checked: it is handed what the store held, opened, and
 * is made again on it without reading; nothing else can use that value (src/core/barrier.ts, handedOut).
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

  const nodes = async () => {
    const table = `refusals_${stores.length}`; // unwired: each node hears nothing of the other
    const [one, two] = [
      await openPostgresStorage({ connectionUrl: db.url, table, nodeId: 'one' }),
      await openPostgresStorage({ connectionUrl: db.url, table, nodeId: 'two' }),
    ];
    stores.push(one, two);
    const rootKey = randomBytes(32);
    const a = new Barrier(one);
    await a.initialize(rootKey);
    const b = new Barrier(two);
    await b.unseal(rootKey);
    return { a, b, one, two, rootKey };
  };
  const change = (barrier: Barrier, read: Uint8Array | null, value: string) =>
    barrier.transaction([
      { op: 'check', key: 'meta', value: read },
      { op: 'put', key: 'meta', value: Buffer.from(value) },
    ]);
  const refusal = (work: Promise<unknown>): Promise<StorageConflictError> =>
    work.then(
      () => assert.fail('the check held'),
      (err: unknown) => (err instanceof StorageConflictError ? err : assert.fail(`not a refusal: ${String(err)}`)),
    );

  it('hands a refused write what the other node wrote, opened, and the write made again on it reads nothing', async () => {
    // Refused by storage (this node has not heard of the other's write yet: its cache still holds what it read), or
    // by the barrier itself (it has heard, as its change feed does, and the check read the store).
    for (const heard of [false, true]) {
      const { a, b, one } = await nodes();
      await change(a, null, 'secret-one');
      const stale = (await a.get('meta'))!;
      await change(b, (await b.get('meta'))!, 'secret-two');
      if (heard) a.invalidate('meta');
      const refused = await refusal(change(a, stale, 'secret-lost'));
      const found = refused.found()?.get('meta');
      assert.equal(text(found), 'secret-two', 'opened: the plaintext the other node wrote');
      assert.ok(!inspect(refused, { depth: 5 }).includes('secret'), 'no value shows when the error is logged');
      assert.ok(!JSON.stringify(refused).includes('secret'));
      const reads = one.stats().reads;
      await change(a, found!, 'secret-three');
      assert.equal(one.stats().reads, reads, `the write checked what it was handed without reading (heard: ${heard})`);
      assert.equal(text(await b.uncached().get('meta')), 'secret-three');
    }
  });

  it('tells a write refused because the other node deleted what it read that there is no entry', async () => {
    const { a, b, one } = await nodes();
    await change(a, null, 'here');
    const stale = (await a.get('meta'))!;
    await b.delete('meta');
    a.invalidate('meta');
    const refused = await refusal(change(a, stale, 'lost'));
    assert.deepEqual([...refused.found()!], [['meta', null]]);
    const reads = one.stats().reads;
    await change(a, null, 'made anew');
    assert.equal(one.stats().reads, reads);
    assert.equal(text(await b.uncached().get('meta')), 'made anew');
  });

  it("names a refusal's keys as the view that made the change knows them, through nested views and a log", async () => {
    const { a, b } = await nodes();
    const keys = ['mount/a/meta', 'mount/a/gone', 'mount/log/entry'];
    for (const key of keys) await a.put(key, Buffer.from('old'));
    const read = async (key: string) => (await a.get(key)) ?? assert.fail(`${key} was written`);
    const [meta, gone, entry] = [await read(keys[0]!), await read(keys[1]!), await read(keys[2]!)];
    await b.put('mount/a/meta', Buffer.from('new'));
    await b.delete('mount/a/gone');
    await b.put('mount/log/entry', Buffer.from('new'));
    const shown = (refused: StorageConflictError) =>
      [...refused.found()!].map(([key, value]) => [key, text(value)]).sort();
    // a's cache still holds what it read: storage refuses, and tells every key the change checked.
    const view = new StorageView(a, 'mount/').view('a/');
    const log = new StorageView(a, 'mount/').view('log/');
    const refused = await refusal(
      view.transactionWith(
        [
          { op: 'check', key: 'meta', value: meta },
          { op: 'check', key: 'gone', value: gone },
          { op: 'put', key: 'meta', value: Buffer.from('lost') },
        ],
        log,
        [{ op: 'check', key: 'entry', value: entry }],
      ),
    );
    assert.equal(refused.key, 'meta');
    assert.deepEqual(shown(refused), [
      ['gone', null],
      ['meta', 'new'],
    ]);
    // A view of a view renames at each level (here the barrier refuses: the refusal above dropped a's cached keys).
    const nested = new StorageView(new StorageView(a, 'mount/'), 'a/');
    const again = await refusal(nested.transaction([{ op: 'check', key: 'meta', value: meta }]));
    assert.deepEqual(shown(again), [['meta', 'new']]);
  });

  it('serves no reader from what it handed out, and a value changed again since is refused again', async () => {
    const { a, b, one } = await nodes();
    await change(a, null, 'v1');
    const stale = (await a.get('meta'))!;
    await change(b, (await b.get('meta'))!, 'v2');
    const handed = (await refusal(change(a, stale, 'lost'))).found()!.get('meta')!;
    assert.equal(text(handed), 'v2');
    await change(b, (await b.uncached().get('meta'))!, 'v3');
    // A reader of a goes to the store (the refusal dropped what a cached), and never gets v2 from the refusal.
    const reads = one.stats().reads;
    assert.equal(text(await a.get('meta')), 'v3');
    assert.equal(one.stats().reads, reads + 1);
    // The writer that was handed v2 loses again, and is handed v3.
    const again = await refusal(change(a, handed, 'lost-again'));
    assert.equal(text(again.found()!.get('meta')), 'v3');
    assert.equal(text(await b.uncached().get('meta')), 'v3');
  });

  it('keeps what it handed out for the latest refusals only: the oldest go first', async () => {
    const { a, b, one } = await nodes();
    const handed: Uint8Array[] = [];
    for (let i = 0; i < 260; i++) {
      const key = `meta${i}`;
      await a.put(key, Buffer.from('mine'));
      const stale = (await a.get(key))!;
      await b.put(key, Buffer.from(`theirs ${i}`));
      const refused = await refusal(
        a.transaction([
          { op: 'check', key, value: stale },
          { op: 'put', key, value: Buffer.from('lost') },
        ]),
      );
      handed.push(refused.found()!.get(key)!);
    }
    const check = async (i: number) => {
      const reads = one.stats().reads;
      await a.transaction([
        { op: 'check', key: `meta${i}`, value: handed[i]! },
        { op: 'put', key: `meta${i}`, value: Buffer.from('again') },
      ]);
      return one.stats().reads - reads;
    };
    assert.equal(await check(259), 0, 'the latest is kept');
    assert.equal(await check(0), 1, 'the oldest was let go: its check reads the entry');
  });

  it('keeps a handed-out plaintext for that very object only, and forgets it as the barrier seals', async () => {
    const { a, b, one, two, rootKey } = await nodes();
    await change(a, null, 'w1');
    const stale = (await a.get('meta'))!;
    await change(b, (await b.get('meta'))!, 'w2');
    const handed = (await refusal(change(a, stale, 'lost'))).found()!.get('meta')!;
    // A copy is no handle on the ciphertext: the barrier reads the entry and compares what it opens to.
    const reads = one.stats().reads;
    await change(a, Buffer.from(handed), 'w3');
    assert.equal(one.stats().reads, reads + 1);
    const stale2 = (await b.get('meta'))!; // b's cache still holds w2; the store holds w3
    const handed2 = (await refusal(change(b, stale2, 'lost'))).found()!.get('meta')!;
    assert.equal(text(handed2), 'w3');
    b.seal();
    await b.unseal(rootKey);
    const twoReads = two.stats().reads;
    await change(b, handed2, 'w4');
    assert.equal(two.stats().reads, twoReads + 1, 'sealed, the barrier forgot what it handed out');
    assert.equal(text(await a.uncached().get('meta')), 'w4');
  });
});

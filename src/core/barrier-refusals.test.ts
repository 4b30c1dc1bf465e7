import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../../scripts/test-databases.js';
import { openPostgresStorage, type PostgresStorage } from '../storage/postgres.js';
import { Barrier } from './barrier.js';
import { StorageConflictError } from './storage.js';

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString() : b);

/**
 * Two nodes' barriers on one PostgreSQL table: a write refused because the other node changed what it checked is
 * handed what the store held, opened, and is made again on it without reading; nothing else can use it.
 */
describe('Barrier refusals on a shared store', () => {
  let db: TestDatabase;
  const stores: PostgresStorage[] = [];
  before(async () => {
    db = await startPostgres();
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    await db?.stop();
  });

  const nodes = async () => {
    const table = `refusals_${stores.length}`;
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
  const refusal = (work: Promise<void>): Promise<StorageConflictError> =>
    work.then(
      () => assert.fail('the check held'),
      (err: unknown) => (err instanceof StorageConflictError ? err : assert.fail(`not a refusal: ${String(err)}`)),
    );

  it('hands a refused write what the other node wrote, opened, and the write made again on it reads nothing', async () => {
    const { a, b, one } = await nodes();
    await change(a, null, 'secret-one');
    const stale = (await a.get('meta'))!; // a's cache: this node is never told of b's change here
    await change(b, (await b.get('meta'))!, 'secret-two');
    const refused = await refusal(change(a, stale, 'secret-lost'));
    const found = refused.found()?.get('meta');
    assert.equal(text(found), 'secret-two', 'opened: the plaintext the other node wrote');
    assert.ok(!inspect(refused, { depth: 5 }).includes('secret'), 'no value shows when the error is logged');
    assert.ok(!JSON.stringify(refused).includes('secret'));
    const reads = one.stats().reads;
    await change(a, found!, 'secret-three');
    assert.equal(one.stats().reads, reads, 'the write checked what it was handed without reading');
    assert.equal(text(await b.uncached().get('meta')), 'secret-three');
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

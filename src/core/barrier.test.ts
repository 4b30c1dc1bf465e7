import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { Barrier } from './barrier.js';
import { ReadCache } from './read-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-barrier-'));
let n = 0;
const fresh = () => openSqliteStorage(join(dir, `b${n++}.db`));
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

describe('Barrier', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('encrypts every entry, binds it to its path and refuses while sealed', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    const rootKey = randomBytes(32);
    await barrier.initialize(rootKey);
    await barrier.put('a/secret', Buffer.from('plaintext-value'));
    const raw = await physical.get('a/secret');
    assert.ok(raw && !Buffer.from(raw).includes('plaintext-value'));
    assert.equal(text(await barrier.get('a/secret')), 'plaintext-value');
    // The same ciphertext under another path does not open: the path is authenticated.
    await physical.put('b/moved', raw!);
    await assert.rejects(barrier.get('b/moved'));
    barrier.seal();
    await assert.rejects(barrier.get('a/secret'), /sealed/);
    await assert.rejects(barrier.unseal(randomBytes(32)));
    await barrier.unseal(rootKey);
    assert.equal(text(await barrier.get('a/secret')), 'plaintext-value');
    await physical.close();
  });

  it('an entry of a term another barrier on the same store rotated to is read after one keyring reload', async () => {
    const physical = fresh();
    const rootKey = randomBytes(32);
    const writer = new Barrier(physical);
    await writer.initialize(rootKey);
    let reloads = 0;
    const reader: Barrier = new Barrier(physical, async () => {
      reloads++;
      await reader.unseal(rootKey);
    });
    await reader.unseal(rootKey);
    const unaware = new Barrier(physical);
    await unaware.unseal(rootKey);
    await writer.rotate(rootKey);
    await writer.put('a/new-term', Buffer.from('v'));
    const [one, two] = await Promise.all([reader.get('a/new-term'), reader.get('a/new-term')]);
    assert.equal(text(one), 'v');
    assert.equal(text(two), 'v');
    assert.equal(reloads, 1, 'one reload serves reads that meet the new term together');
    await assert.rejects(unaware.get('a/new-term'), /unknown key term 2/);
    await physical.close();
  });

  it('two writes of one value never share a ciphertext (fresh nonce)', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    await barrier.put('k', Buffer.from('same'));
    const first = Buffer.from((await physical.get('k'))!);
    await barrier.put('k', Buffer.from('same'));
    assert.notDeepEqual(Buffer.from((await physical.get('k'))!), first);
    await physical.close();
  });

  it('rotation adds a term; entries of every term still decrypt after unseal', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    const rootKey = randomBytes(32);
    await barrier.initialize(rootKey);
    await barrier.put('old', Buffer.from('term1'));
    assert.equal((await barrier.rotate(rootKey)).term, 2);
    await barrier.put('new', Buffer.from('term2'));
    assert.equal(Buffer.from((await physical.get('old'))!).readUInt32BE(1), 1);
    assert.equal(Buffer.from((await physical.get('new'))!).readUInt32BE(1), 2);
    barrier.seal();
    await barrier.unseal(rootKey);
    assert.equal(barrier.keyStatus().term, 2);
    assert.equal(text(await barrier.get('old')), 'term1');
    assert.equal(text(await barrier.get('new')), 'term2');
    await physical.close();
  });

  it('a read racing a write never leaves the old value cached', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    await barrier.put('k', Buffer.from('v1'));
    for (let i = 2; i < 50; i++) {
      const reads = [barrier.get('k'), barrier.get('k')];
      const write = barrier.put('k', Buffer.from(`v${i}`));
      reads.push(barrier.get('k'));
      await Promise.all([...reads, write]);
      assert.equal(text(await barrier.get('k')), `v${i}`);
    }
    await barrier.delete('k');
    assert.equal(await barrier.get('k'), undefined);
    await physical.close();
  });
});

describe('Barrier write-through', () => {
  it('keeps what it committed: the next read needs no storage read, and the last of a transaction wins', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    await barrier.transaction([
      { op: 'put', key: 'w/a', value: Buffer.from('1') },
      { op: 'put', key: 'w/b', value: Buffer.from('gone') },
      { op: 'delete', key: 'w/b' },
    ]);
    const reads = physical.stats().reads;
    assert.equal(text(await barrier.get('w/a')), '1');
    assert.equal(physical.stats().reads, reads, 'served from the cache');
    assert.equal(await barrier.get('w/b'), undefined);
    assert.equal(physical.stats().reads, reads + 1, 'a key the transaction deleted is not kept');
    await physical.close();
  });

  it("keeps nothing when another node's change came in while its write was committed", async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    const write = barrier.put('w/k', Buffer.from('mine'));
    barrier.invalidate('w/other'); // another node's change, applied while this write is on its way
    await write;
    const reads = physical.stats().reads;
    assert.equal(text(await barrier.get('w/k')), 'mine');
    assert.equal(physical.stats().reads, reads + 1, 'read from storage, not kept');
    await physical.close();
  });

  it('keeps nothing once sealed while its write was committed', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    const rootKey = randomBytes(32);
    await barrier.initialize(rootKey);
    const write = barrier.put('w/k', Buffer.from('mine'));
    barrier.seal();
    await write;
    await barrier.unseal(rootKey);
    const reads = physical.stats().reads;
    assert.equal(text(await barrier.get('w/k')), 'mine');
    assert.equal(physical.stats().reads, reads + 1);
    await physical.close();
  });
});

describe('ReadCache', () => {
  it('evicts least recently used entries beyond its size and ignores fills that raced a write', () => {
    const cache = new ReadCache(160);
    for (const key of ['a', 'b', 'c', 'd']) cache.fill(key, Buffer.alloc(10, key), cache.epoch());
    assert.ok(cache.get('a'));
    for (let i = 0; i < 20; i++) cache.fill(`x${i}`, Buffer.alloc(10), cache.epoch());
    assert.equal(cache.get('b'), undefined);
    const epoch = cache.epoch();
    cache.invalidate('other');
    cache.fill('late', Buffer.from('stale'), epoch);
    assert.equal(cache.get('late'), undefined);
  });
});

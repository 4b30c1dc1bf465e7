import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { Barrier } from './barrier.js';
import { ReadCache } from './read-cache.js';
import { StorageConflictError, type Storage, type StorageOp } from './storage.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-barrier-'));
let n = 0;
const fresh = () => openSqliteStorage(join(dir, `b${n++}.db`));
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

/** Two nodes' barriers on one store: `a` initialized it, `b` unsealed with the same root key. */
async function twoBarriers(physical: Storage): Promise<{ a: Barrier; b: Barrier }> {
  const rootKey = randomBytes(32);
  const a = new Barrier(physical);
  await a.initialize(rootKey);
  const b = new Barrier(physical);
  await b.unseal(rootKey);
  return { a, b };
}

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

  it('seals a log entry to its log: it opens at any position of that log, nowhere else, and no other entry opens there', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    const [key] = (await barrier.transaction([{ op: 'append', key: 'sys/events/', value: Buffer.from('event') }]))!;
    assert.equal(key, 'sys/events/0000000000000001');
    const raw = (await physical.get(key!))!;
    assert.ok(!Buffer.from(raw).includes('event'));
    assert.equal(raw[0], 2, 'the header says the entry is a log entry');
    assert.equal(text(await barrier.get(key!)), 'event');
    // The store may reorder a log's entries (their order is not sealed), but not move one to another key.
    await physical.put('sys/events/0000000000000009', raw);
    assert.equal(text(await barrier.get('sys/events/0000000000000009')), 'event');
    for (const elsewhere of ['sys/other/0000000000000001', 'sys/events/x', 'sys/events/0000000000000001/']) {
      await physical.put(elsewhere, raw);
      await assert.rejects(barrier.get(elsewhere), Error, elsewhere);
    }
    // An ordinary entry's ciphertext, or one relabelled as a log entry, does not open at a log position.
    await barrier.put('secret/a', Buffer.from('value'));
    const ordinary = Buffer.from((await physical.get('secret/a'))!);
    await physical.put('sys/events/0000000000000002', ordinary);
    await assert.rejects(barrier.get('sys/events/0000000000000002'));
    ordinary[0] = 2;
    await physical.put('secret/a', ordinary);
    await assert.rejects(barrier.uncached().get('secret/a'));
    // Nor is a log entry accepted as a value sealed outside storage.
    assert.throws(() => barrier.decryptValue('sys/events/0000000000000001', raw), /unknown format/);
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

  it('rotations at once, on one barrier or two sharing the store, never give one term two keys', async () => {
    // Before, each built its next term from the keyring it held and saved it over the other's: entries written
    // under one rotation's key could no longer be read once another's key of the same term replaced it.
    const physical = fresh();
    const rootKey = randomBytes(32);
    const a = new Barrier(physical);
    await a.initialize(rootKey);
    const b = new Barrier(physical);
    await b.unseal(rootKey);
    const written: string[] = [];
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      work.push(a.rotate(rootKey));
      written.push(`one/${i}`);
      work.push(a.put(`one/${i}`, Buffer.from(`value ${i}`)));
    }
    await Promise.all(work);
    // b has not heard of a's rotations (nothing tells it here, as a node that has not been notified yet).
    await a.put('two/a', Buffer.from('written by a'));
    assert.equal((await b.rotate(rootKey)).term, 7);
    await b.put('two/b', Buffer.from('written by b'));
    const reader = new Barrier(physical);
    await reader.unseal(rootKey);
    assert.equal(reader.keyStatus().term, 7);
    for (const [i, key] of written.entries()) assert.equal(text(await reader.get(key)), `value ${i}`, key);
    assert.equal(text(await reader.get('two/a')), 'written by a');
    assert.equal(text(await reader.get('two/b')), 'written by b');
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

  it('serves what is committed while a write of the key is on its way, and keeps nothing stale when it fails', async () => {
    const physical = fresh();
    const { a, b } = await twoBarriers(physical);
    await a.put('k', Buffer.from('v1'));
    const reads = physical.stats().reads;
    const write = a.put('k', Buffer.from('v2'));
    assert.equal(text(await a.get('k')), 'v1', 'the store still holds v1: the write is not committed yet');
    assert.equal(physical.stats().reads, reads, 'from the cache');
    await write;
    assert.equal(text(await a.get('k')), 'v2');

    // A's check holds for what A has cached, and fails in the store, which another node changed meanwhile.
    const read = await a.get('k');
    await b.put('k', Buffer.from('theirs'));
    await assert.rejects(
      a.transaction([
        { op: 'check', key: 'k', value: read! },
        { op: 'put', key: 'k', value: Buffer.from('mine') },
      ]),
      StorageConflictError,
    );
    assert.equal(text(await a.get('k')), 'theirs', 'the failed write dropped what A had cached of k');
    await physical.close();
  });
});

describe('Barrier write-through', () => {
  it('keeps a committed value in memory of its own, and what it read as AES-GCM opened it', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    await barrier.put('w/small', Buffer.from('small'));
    const written = (await barrier.get('w/small'))!;
    assert.equal(written.byteLength, written.buffer.byteLength, 'not a slice of the shared pool');
    barrier.invalidate('w/small');
    const read = (await barrier.get('w/small'))!;
    assert.equal(read.byteLength, read.buffer.byteLength);
    assert.equal(await barrier.get('w/small'), read, 'the very Buffer read is what the cache keeps');
    await physical.close();
  });

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

  it('keeps what it wrote when another node changed only other keys meanwhile', async () => {
    const physical = fresh();
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    const write = barrier.put('w/k', Buffer.from('mine'));
    barrier.invalidate('w/other'); // another node's change, applied while this write is on its way
    await write;
    const reads = physical.stats().reads;
    assert.equal(text(await barrier.get('w/k')), 'mine');
    assert.equal(physical.stats().reads, reads, 'kept: another key changing says nothing of this one');
    await physical.close();
  });

  it('never keeps a value another node overwrote while it was committed, even behind a flood of other changes', async () => {
    const physical = fresh();
    const { a, b } = await twoBarriers(physical); // another node on the same store
    for (const flood of [0, 40_000]) {
      await a.put('w/k', Buffer.from('old'));
      const mine = a.put('w/k', Buffer.from('mine'));
      const theirs = b.put('w/k', Buffer.from('theirs')); // committed after A's write
      a.invalidate('w/k'); // B's notification reaches A before A's write resolves
      // A flood of changes of other keys: a bounded record of changed keys would have let go of w/k's.
      for (let i = 0; i < flood; i++) a.invalidate(`flood/${i}`);
      await Promise.all([mine, theirs]);
      assert.equal(text(await a.get('w/k')), 'theirs', `flood of ${flood}`);
    }
    // The notification of a change that could not name its keys refuses every keep as well.
    const mine = a.put('w/all', Buffer.from('mine'));
    const theirs = b.put('w/all', Buffer.from('theirs'));
    a.invalidateAll();
    await Promise.all([mine, theirs]);
    assert.equal(text(await a.get('w/all')), 'theirs');
    await physical.close();
  });

  it("a read racing another node's change of the same key never fills the old value", async () => {
    const physical = fresh();
    const { a, b } = await twoBarriers(physical); // another node on the same store
    await b.put('r/k', Buffer.from('v1'));
    const read = a.get('r/k'); // reads v1 from storage
    await b.put('r/k', Buffer.from('v2'));
    a.invalidate('r/k'); // heard before A's read returns
    assert.equal(text(await read), 'v1');
    assert.equal(text(await a.get('r/k')), 'v2', 'the old value was not cached');
    // A change of another key during the read does not stop the fill.
    a.invalidate('r/k');
    const reads = physical.stats().reads;
    const again = a.get('r/k');
    a.invalidate('r/other');
    await again;
    assert.equal(text(await a.get('r/k')), 'v2');
    assert.equal(physical.stats().reads, reads + 1, 'filled despite the change of another key');
    await physical.close();
  });

  it('a read or write that storage fails stops watching its keys, and fills nothing', async () => {
    const physical = fresh();
    let failing = false;
    const down = () => Promise.reject(new Error('store down'));
    const flaky: Storage = {
      get: (key) => (failing ? down() : physical.get(key)),
      transaction: (ops) => (failing ? down() : physical.transaction(ops)),
      put: (key, value) => physical.put(key, value),
      delete: (key) => physical.delete(key),
      list: (prefix) => physical.list(prefix),
      close: () => physical.close(),
    };
    const barrier = new Barrier(flaky);
    await barrier.initialize(randomBytes(32));
    await barrier.put('w/k', Buffer.from('v1'));
    barrier.invalidate('w/k');
    failing = true;
    await assert.rejects(barrier.get('w/k'), /store down/);
    await assert.rejects(barrier.put('w/k', Buffer.from('v2')), /store down/);
    const cache = (barrier as unknown as { cache: ReadCache }).cache;
    assert.equal(cache.watched(), 0);
    failing = false;
    assert.equal(text(await barrier.get('w/k')), 'v1');
    assert.equal(await barrier.get('w/none'), undefined);
    assert.equal(cache.watched(), 0);
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

describe('Barrier checks', () => {
  it('checks what a read returned against the ciphertext it came from; another writer in between fails it', async () => {
    const store = fresh();
    const sent: StorageOp[][] = [];
    const physical: Storage = {
      get: (key) => store.get(key),
      put: (key, value) => store.put(key, value),
      delete: (key) => store.delete(key),
      list: (prefix) => store.list(prefix),
      transaction: (ops) => (sent.push(ops), store.transaction(ops)),
      close: () => store.close(),
    };
    const { a, b } = await twoBarriers(physical); // another node on the same store
    const conflict = (err: unknown) => err instanceof StorageConflictError && err.key === 'meta';
    const change = (barrier: Barrier, read: Uint8Array | null, value: string) =>
      barrier.transaction([
        { op: 'check', key: 'meta', value: read },
        { op: 'put', key: 'meta', value: Buffer.from(value) },
      ]);

    await change(a, null, 'plaintext-one');
    await assert.rejects(change(b, null, 'never'), conflict, 'there is an entry now');
    // What a read returned (from storage, or from the cache after a write) checks without another storage read.
    await change(b, (await b.get('meta'))!, 'plaintext-two');
    await change(b, (await b.get('meta'))!, 'plaintext-three');
    // `a` still holds its own write, which b replaced twice: refused, and its cache no longer serves it.
    const stale = (await a.get('meta'))!;
    assert.equal(text(stale), 'plaintext-one');
    await assert.rejects(change(a, stale, 'lost'), conflict);
    assert.equal(text(await a.get('meta')), 'plaintext-three');
    // A copy of what was read is no handle on a ciphertext: the stored entry is opened and compared instead.
    await change(a, Buffer.from((await a.get('meta'))!), 'plaintext-four');
    await assert.rejects(change(a, Buffer.from('plaintext-three'), 'lost'), conflict);
    assert.equal(text(await b.uncached().get('meta')), 'plaintext-four');
    // Storage only ever saw ciphertext, and checks by the header and nonce of a ciphertext.
    const seen = Buffer.concat(sent.flat().flatMap((op) => (op.op === 'put' ? [op.value] : [])));
    assert.ok(!seen.includes('plaintext'), 'no plaintext reached storage');
    const checks = sent.flat().filter((op) => op.op === 'check');
    assert.ok(checks.every((op) => ('prefix' in op ? op.prefix.length === 17 : op.value === null)));
    assert.ok(checks.some((op) => 'prefix' in op));
    await assert.rejects(a.transaction([{ op: 'check', key: 'meta', prefix: Buffer.alloc(17) }]), TypeError);
    await store.close();
  });
});

describe('ReadCache', () => {
  const entry = (plain: string) => ({ plain: Buffer.from(plain), written: '' });
  const fill = (cache: ReadCache, key: string, plain: string) => cache.endRead(cache.startRead(key), entry(plain));
  /** Whether a Buffer is all of its memory: a slice of Node's shared pool keeps the whole slab alive. */
  const ownsItsMemory = (b: Uint8Array) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;

  it('counts what each entry costs beside its bytes: many small ones stay within its size', () => {
    const cache = new ReadCache(64 * 1024);
    for (let i = 0; i < 1000; i++) fill(cache, `k${i}`, 'v');
    const kept = Array.from({ length: 1000 }, (_, i) => cache.get(`k${i}`)).filter(Boolean).length;
    // 64 KiB holds 64 Ki one-byte values, and about 160 entries as they cost.
    assert.ok(kept > 100 && kept < 200, `kept ${kept}`);
    const longKey = 'k'.repeat(5000);
    fill(cache, longKey, 'v');
    assert.equal(cache.get(longKey), undefined, 'its key counts too: more than a sixteenth of the cache');
  });

  it('keeps each entry in memory of its own, never a slice that holds a slab of the shared pool alive', () => {
    const cache = new ReadCache(1024 * 1024);
    const pooled = Buffer.from('read back');
    assert.ok(!ownsItsMemory(pooled), 'a small Buffer.from is a slice of the pool');
    cache.endRead(cache.startRead('read'), { plain: pooled, written: '' });
    const write = cache.startWrite(['written']);
    cache.replace(write, 'written', { plain: Buffer.from('written value'), written: '' });
    cache.endWrite(write);
    for (const key of ['read', 'written']) {
      const kept = cache.get(key)!.plain;
      assert.ok(ownsItsMemory(kept), `${key}: ${kept.byteLength} bytes in ${kept.buffer.byteLength}`);
    }
    assert.equal(cache.get('read')?.plain.toString(), 'read back');
    assert.equal(cache.get('written')?.plain.toString(), 'written value');
    // What AES-GCM opened already has memory of its own, and is kept as it is: a caller's check finds it by identity.
    const own = Buffer.allocUnsafeSlow(3).fill(1);
    cache.endRead(cache.startRead('own'), { plain: own, written: '' });
    assert.equal(cache.get('own')?.plain, own);
  });

  it('evicts least recently used entries beyond its size and ignores fills that raced a change of their key', () => {
    const cache = new ReadCache(16 * 420); // sixteen entries of ten bytes, with what each costs beside them
    for (const key of ['a', 'b', 'c', 'd']) fill(cache, key, key.repeat(10));
    assert.ok(cache.get('a'));
    for (let i = 0; i < 20; i++) fill(cache, `x${i}`, 'x'.repeat(10));
    assert.equal(cache.get('b'), undefined);
    let read = cache.startRead('late');
    cache.invalidate('late');
    cache.endRead(read, entry('stale'));
    assert.equal(cache.get('late'), undefined);
    read = cache.startRead('remote');
    cache.invalidateRemote('remote');
    cache.endRead(read, entry('stale'));
    assert.equal(cache.get('remote'), undefined, "another node's change refuses it too");
    read = cache.startRead('fresh');
    cache.invalidate('other');
    cache.invalidateRemote('other');
    cache.endRead(read, entry('v'));
    assert.equal(cache.get('fresh')?.plain.toString(), 'v', 'a change of another key does not refuse the fill');
    read = cache.startRead('fresh');
    cache.clear();
    cache.endRead(read, entry('v'));
    assert.equal(cache.get('fresh'), undefined, 'nothing read before a clear fills after it');
    cache.endRead(cache.startRead('missing'));
    assert.equal(cache.watched(), 0, 'every read that ended, found or not, stopped watching its key');
  });

  it('of two reads of one key with a change between their starts, only the later one fills, in either order', () => {
    for (const laterEndsFirst of [false, true]) {
      const cache = new ReadCache(1024 * 1024);
      const before = cache.startRead('k');
      cache.invalidate('k');
      const after = cache.startRead('k');
      if (laterEndsFirst) cache.endRead(after, entry('new'));
      cache.endRead(before, entry('old'));
      if (!laterEndsFirst) {
        assert.equal(cache.get('k'), undefined, 'the earlier read fills nothing');
        cache.endRead(after, entry('new'));
      }
      assert.equal(cache.get('k')?.plain.toString(), 'new');
      assert.equal(cache.watched(), 0);
    }
  });

  it("keeps a write's value unless another node changed its key (or everything was dropped) while it was written", () => {
    const cache = new ReadCache(1024 * 1024);
    let write = cache.startWrite(['k', 'j', 'k']);
    cache.invalidate('k'); // this node's own earlier write of k, committed first: still ordered before this one
    cache.invalidateRemote('other');
    cache.replace(write, 'k', entry('mine'));
    cache.replace(write, 'j', entry('j'));
    cache.endWrite(write);
    assert.equal(cache.get('k')?.plain.toString(), 'mine');
    assert.equal(cache.get('j')?.plain.toString(), 'j');

    write = cache.startWrite(['k']);
    const overlapping = cache.startWrite(['k']);
    cache.invalidateRemote('k');
    const afterIt = cache.startWrite(['k']);
    cache.replace(write, 'k', entry('mine again'));
    assert.equal(cache.get('k'), undefined, "the other node's change may be the later one");
    cache.replace(overlapping, 'k', entry('also mine'));
    assert.equal(cache.get('k'), undefined, 'a write under way during the change is refused too');
    cache.replace(afterIt, 'k', entry('after theirs'));
    assert.equal(cache.get('k')?.plain.toString(), 'after theirs', 'a write begun after the change is kept');
    const another = cache.startWrite(['unlisted']);
    cache.replace(afterIt, 'unlisted', entry('x'));
    assert.equal(cache.get('unlisted'), undefined, 'a key the write did not name is never kept');
    for (const w of [write, overlapping, afterIt, another]) cache.endWrite(w);

    write = cache.startWrite(['k']);
    cache.clear();
    cache.replace(write, 'k', entry('before the clear'));
    cache.endWrite(write);
    assert.equal(cache.get('k'), undefined);
    assert.equal(cache.watched(), 0);
  });

  it('a write of a key refuses the fill of a read of it under way', () => {
    const cache = new ReadCache(1024 * 1024);
    const read = cache.startRead('k');
    const write = cache.startWrite(['k']);
    cache.replace(write, 'k', entry('new'));
    cache.endWrite(write);
    cache.endRead(read, entry('old'));
    assert.equal(cache.get('k')?.plain.toString(), 'new');
  });
});

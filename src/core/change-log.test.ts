import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { ChangeLog, type ChangeEvent, type Delivery } from './change-log.js';
import { StorageConflictError, type Storage } from './storage.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-change-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Collects what a subscriber of log receives, until stop(). */
function subscriber(log: ChangeLog) {
  const seen: ChangeEvent[] = [];
  const controller = new AbortController();
  const done = (async () => {
    for await (const delivery of log.subscribe(log.lastIndex, controller.signal)) {
      if (delivery.type === 'event') seen.push(delivery.event);
    }
  })();
  return { seen, stop: () => (controller.abort(), done) };
}

const change = (path: string) => ({ kind: 'write' as const, path, aclPath: path, requestPath: path });
const key = (index: number) => index.toString().padStart(16, '0');

/**
 * A change of `log` whose commit is not done until commit(), as in the barrier, whose read cache holds the value
 * before the change until then. With `storage`, its entry is in the store already (another node can read it there).
 */
async function inFlight(log: ChangeLog, path: string, storage?: Storage) {
  const staged = log.stage(change(path));
  if (storage) await storage.transaction(staged.ops);
  let committed!: () => void;
  const publishing = staged.publish(new Promise<void>((resolve) => (committed = resolve)));
  return { event: staged.event, commit: () => (committed(), publishing) };
}

/** A log on a store of its own, loaded. */
async function oneNode(file: string) {
  const storage = openSqliteStorage(join(dir, file));
  after(() => storage.close());
  const log = new ChangeLog(storage);
  await log.load();
  return { storage, log };
}

/** The path of the event a subscription gave, if an event. */
const pathOf = (next: IteratorResult<Delivery>) =>
  !next.done && next.value.type === 'event' ? next.value.event.path : undefined;

/** Two nodes' logs on one store; b has heard of a's first change. */
async function twoNodes(file: string) {
  const storage = openSqliteStorage(join(dir, file));
  after(() => storage.close());
  const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
  await a.load();
  await b.load();
  await a.append(change('secret/before'));
  await b.ingest(key(1));
  return { storage, a, b };
}

describe('ChangeLog on a store shared by two nodes', () => {
  it('a change from the other node reaches local subscribers', async () => {
    const storage = openSqliteStorage(join(dir, 'a.db'));
    const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
    await a.load();
    await b.load();
    const onB = subscriber(b);
    const written = await a.append(change('secret/x'));
    await b.ingest(key(written.index));
    await b.ingest(key(written.index)); // a repeated notification delivers nothing twice
    const next = await b.append(change('secret/y'));
    assert.equal(next.index, written.index + 1, 'the next local append goes after the ingested one');
    await new Promise((r) => setImmediate(r));
    await onB.stop();
    assert.deepEqual(
      onB.seen.map((e) => e.path),
      ['secret/x', 'secret/y'],
    );
    await storage.close();
  });

  it('two nodes that take the same index in the same instant lose neither change', async () => {
    const storage = openSqliteStorage(join(dir, 'b.db'));
    const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
    await a.load();
    await b.load();
    const [onA, onB] = [subscriber(a), subscriber(b)];
    const first = await a.append(change('secret/from-a'));
    const second = await b.append(change('secret/from-b')); // same index: b's write replaces a's
    assert.equal(first.index, second.index);
    // The notifications each node gets of the other's write to that index:
    await a.ingest(key(first.index)); // a finds b's event where its own was: it appends both again
    await b.ingest(key(second.index)); // b finds its own: nothing to do
    for (const index of [first.index + 1, first.index + 2]) await b.ingest(key(index));
    await new Promise((r) => setImmediate(r));
    await onA.stop();
    await onB.stop();
    assert.ok(
      onA.seen.some((e) => e.path === 'secret/from-b'),
      'a subscriber on a sees b’s change',
    );
    assert.ok(
      onB.seen.some((e) => e.path === 'secret/from-a'),
      'a subscriber on b sees a’s change',
    );
    await storage.close();
  });

  it('with nobody subscribed it reads no event of the other node, yet repairs a shared index and serves the backlog', async () => {
    const storage = openSqliteStorage(join(dir, 'c.db'));
    const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
    await a.load();
    await b.load();
    const written = await a.append(change('secret/x'));
    const reads = storage.stats().reads;
    await b.ingest(key(written.index));
    assert.equal(storage.stats().reads, reads, 'no subscriber on b: the event is not read');
    assert.equal(b.lastIndex, written.index);
    // A collision is still noticed: b reads an index where it wrote an event itself.
    const mine = await b.append(change('secret/from-b'));
    const theirs = await a.append(change('secret/from-a')); // same index, replaces b's
    assert.equal(mine.index, theirs.index);
    await b.ingest(key(theirs.index));
    assert.equal(b.lastIndex, theirs.index + 2, 'b appended both changes again');
    // A subscriber that comes later reads the backlog from the store.
    const seen: string[] = [];
    for await (const delivery of b.subscribe(0, AbortSignal.timeout(5000))) {
      if (delivery.type === 'event') seen.push(delivery.event.path);
      if (seen.length === 4) break;
    }
    assert.deepEqual(seen, ['secret/x', 'secret/from-a', 'secret/from-a', 'secret/from-b']);
    await storage.close();
  });
});

describe("ChangeLog: the other node's next change is heard while this node's change is still being committed", () => {
  it('is told after it, to subscribers live and new, and "now" stays before this node\'s change', async () => {
    const { storage, a, b } = await twoNodes('held-back.db');
    const live = subscriber(a);
    // a's change is in the store (b reads it there and writes after it); a has not finished its commit.
    const fromA = await inFlight(a, 'secret/from-a', storage);
    await b.ingest(key(2));
    const fromB = await b.append(change('secret/from-b'));
    assert.equal(fromB.index, 3);
    await a.ingest(key(3));
    assert.equal(a.lastIndex, 1, '"now" is before a\'s change, which is not readable on a yet');
    const late = subscriber(a);
    await new Promise((r) => setImmediate(r));
    assert.equal(live.seen.length, 0, "nothing is told before a's own change");
    await fromA.commit();
    await new Promise((r) => setImmediate(r));
    await live.stop();
    await late.stop();
    assert.deepEqual(
      live.seen.map((e) => e.path),
      ['secret/from-a', 'secret/from-b'],
    );
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/from-a', 'secret/from-b'],
    );
    assert.equal(a.lastIndex, 3);
  });

  it('the same when nobody was subscribed as it was heard, and a subscriber came before the commit was done', async () => {
    const { storage, a, b } = await twoNodes('held-back-unsubscribed.db');
    const fromA = await inFlight(a, 'secret/from-a', storage);
    await b.ingest(key(2));
    await b.append(change('secret/from-b'));
    await a.ingest(key(3)); // nobody subscribed on a
    const late = subscriber(a);
    await new Promise((r) => setImmediate(r));
    await fromA.commit();
    await new Promise((r) => setImmediate(r));
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/from-a', 'secret/from-b'],
    );
  });

  it("and with two changes of its own in flight and the other node's between them, each is told in order", async () => {
    const { storage, a, b } = await twoNodes('held-back-interleaved.db');
    const fromB = async (path: string, at: number) => {
      await b.ingest(key(at - 1));
      assert.equal((await b.append(change(path))).index, at);
      await a.ingest(key(at)); // nobody subscribed on a: only the index is taken
    };
    const a2 = await inFlight(a, 'secret/a-2', storage);
    await fromB('secret/b-3', 3);
    const a4 = await inFlight(a, 'secret/a-4', storage);
    await fromB('secret/b-5', 5);
    assert.equal(a.lastIndex, 1);
    const late = subscriber(a);
    await new Promise((r) => setImmediate(r));
    await a2.commit();
    assert.equal(a.lastIndex, 3, 'not past a-4, still in flight');
    await a4.commit();
    await new Promise((r) => setTimeout(r, 50));
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/a-2', 'secret/b-3', 'secret/a-4', 'secret/b-5'],
    );
    assert.equal(a.lastIndex, 5);
  });

  it('a notification that never came is made up for by reading the store again (reload)', async () => {
    const storage = openSqliteStorage(join(dir, 'reload.db'));
    after(() => storage.close());
    const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
    await a.load();
    await b.load();
    const onA = subscriber(a);
    await b.append(change('secret/unheard-1'));
    await b.append(change('secret/unheard-2'));
    await a.invalidation.reload!();
    await new Promise((r) => setImmediate(r));
    await onA.stop();
    assert.deepEqual(
      onA.seen.map((e) => e.path),
      ['secret/unheard-1', 'secret/unheard-2'],
    );
    assert.equal(a.lastIndex, 2);
  });
});

describe('ChangeLog: loaded again (an unseal) under a live subscriber', () => {
  it(
    'tells it to resynchronise: what other nodes wrote while this one was sealed was never heard',
    { timeout: 20_000 },
    async () => {
      const storage = openSqliteStorage(join(dir, 'reloaded.db'));
      after(() => storage.close());
      const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
      await a.load();
      await b.load();
      const controller = new AbortController();
      const stream = a.subscribe(a.lastIndex, controller.signal);
      const first = stream.next();
      // a is sealed: it hears nothing while b writes; then it is unsealed and loads the log again.
      await b.append(change('secret/while-sealed'));
      await a.load();
      assert.deepEqual((await first).value, { type: 'reset', index: 1 });
      const next = stream.next();
      await b.append(change('secret/after'));
      await a.ingest(key(2));
      const told = await next;
      assert.equal(!told.done && told.value.type === 'event' && told.value.event.path, 'secret/after');
      controller.abort();
      await stream.return(undefined);
    },
  );
});

describe('ChangeLog: loaded again while a commit of its own is in flight (a seal that stopped waiting for it)', () => {
  it("tells a subscriber that came meanwhile of that change and of the other node's after it", async () => {
    const { storage, a, b } = await twoNodes('load-in-flight-shared.db');
    const a2 = await inFlight(a, 'secret/a-2', storage);
    await b.ingest(key(2));
    await b.append(change('secret/b-3'));
    await a.load();
    assert.equal(a.lastIndex, 1);
    const late = subscriber(a);
    await new Promise((r) => setImmediate(r));
    await a2.commit();
    await new Promise((r) => setTimeout(r, 50));
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/a-2', 'secret/b-3'],
    );
  });

  it('hands out no index twice, and "now" stays before that change', async () => {
    const { storage, log } = await oneNode('load-in-flight.db');
    await log.append(change('secret/before'));
    const pending = await inFlight(log, 'secret/in-flight');
    await log.load();
    assert.equal(log.lastIndex, 1);
    const next = log.stage(change('secret/next'));
    assert.equal(next.event.index, pending.event.index + 1);
    await pending.commit();
    await next.publish(storage.transaction(next.ops));
    assert.equal(log.lastIndex, next.event.index);
  });
});

describe('ChangeLog: the other node takes the same index in the same group commit', () => {
  it('its notification, heard before this node hears its own commit is done, still repairs the overwritten change', async () => {
    const storage = openSqliteStorage(join(dir, 'e.db'));
    const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
    await a.load();
    await b.load();
    const fromA = a.stage(change('secret/from-a'));
    const fromB = b.stage(change('secret/from-b'));
    assert.equal(fromA.event.index, fromB.event.index);
    // One group commit, b's write last: b's event is the one the store keeps at that index.
    await Promise.all([storage.transaction(fromA.ops), storage.transaction(fromB.ops)]);
    // a is told of b's write before it hears that its own commit is done (the commit thread's order).
    let landed!: () => void;
    const aPublished = fromA.publish(new Promise<void>((resolve) => (landed = resolve)));
    const repaired = a.ingest(key(fromA.event.index));
    await new Promise((r) => setImmediate(r));
    landed();
    await Promise.all([aPublished, repaired, fromB.publish(Promise.resolve())]);
    const stored: string[] = [];
    for (const k of await storage.list('')) {
      stored.push((JSON.parse(Buffer.from((await storage.get(k))!).toString()) as ChangeEvent).path);
    }
    assert.ok(stored.includes('secret/from-a'), `a's change is in the log: ${stored.join(', ')}`);
    assert.ok(stored.includes('secret/from-b'), `b's change is in the log: ${stored.join(', ')}`);
    await storage.close();
  });
});

describe('ChangeLog: a subscriber that starts while a change is being committed', () => {
  it('gets that change, which it could not have read yet', async () => {
    const storage = openSqliteStorage(join(dir, 'c.db'));
    const log = new ChangeLog(storage);
    await log.load();
    await log.append(change('secret/before'));
    // A write has taken its index and its commit is not done: the written value is not readable yet.
    const staged = log.stage(change('secret/in-flight'));
    const startedAt = log.lastIndex;
    const late = subscriber(log);
    const published = await staged.publish(storage.transaction(staged.ops));
    await new Promise((r) => setImmediate(r));
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/in-flight'],
    );
    assert.equal(startedAt, published.index - 1, 'a subscriber from now starts before the uncommitted change');
    assert.equal(log.lastIndex, published.index);
    await storage.close();
  });

  it('is not told of it from the store before this node has finished its commit (its write not readable here yet)', async () => {
    const { storage, log } = await oneNode('e.db');
    await log.append(change('secret/before'));
    // The entry is in the store, but the commit is not done here: in the barrier, the read cache still holds the
    // value before the change until then. A subscriber told of the change now read that value and lost the change.
    const pending = await inFlight(log, 'secret/in-flight', storage);
    const controller = new AbortController();
    const stream = log.subscribe(log.lastIndex, controller.signal);
    const first = stream.next();
    const early = await Promise.race([first.then(() => 'told'), sleep(300).then(() => 'not yet')]);
    assert.equal(early, 'not yet', 'the subscriber was told of a change whose commit is not done here');
    await pending.commit();
    assert.equal(pathOf(await first), 'secret/in-flight');
    controller.abort();
    await stream.return(undefined);
  });

  it('nor does a reset say that it was seen', async () => {
    const { storage, log } = await oneNode('f.db');
    for (let i = 0; i < 4; i++) await log.append(change(`secret/${i}`));
    const pending = await inFlight(log, 'secret/in-flight', storage);
    // Another node trimmed the two oldest entries: a subscriber from the first index gets a reset.
    await storage.transaction([1, 2].map((index) => ({ op: 'delete' as const, key: key(index) })));
    const controller = new AbortController();
    const stream = log.subscribe(0, controller.signal);
    assert.deepEqual((await stream.next()).value, { type: 'reset', index: 4 });
    const next = stream.next();
    await pending.commit();
    assert.equal(pathOf(await next), 'secret/in-flight');
    controller.abort();
    await stream.return(undefined);
  });

  it('and after a change whose commit failed, the next one still moves "now" on', async () => {
    const { log } = await oneNode('d.db');
    const live = subscriber(log);
    const conflict = log.stage(change('secret/refused'));
    await assert.rejects(conflict.publish(Promise.reject(new StorageConflictError('x'))), StorageConflictError);
    assert.equal(log.lastIndex, 0, 'a check that failed wrote nothing: not "now"');
    // A commit whose outcome is unknown may have landed: "now" passes it, and subscribers read it from the store,
    // where here it is not.
    const failed = log.stage(change('secret/lost'));
    await assert.rejects(failed.publish(Promise.reject(new Error('connection lost'))), /connection lost/);
    assert.equal(log.lastIndex, failed.event.index);
    const next = await log.append(change('secret/next'));
    assert.equal(log.lastIndex, next.index);
    await new Promise((r) => setTimeout(r, 50));
    await live.stop();
    assert.deepEqual(
      live.seen.map((e) => e.path),
      ['secret/next'],
    );
  });

  it('one of unknown outcome that did land is read from the store by live subscribers', async () => {
    const { storage, log } = await oneNode('landed.db');
    const live = subscriber(log);
    const landed = log.stage(change('secret/landed'));
    await storage.transaction(landed.ops);
    await assert.rejects(landed.publish(Promise.reject(new Error('connection lost'))), /connection lost/);
    await new Promise((r) => setTimeout(r, 50));
    await live.stop();
    assert.deepEqual(
      live.seen.map((e) => e.path),
      ['secret/landed'],
    );
  });
});

describe('ChangeLog: trimming after the other node appended many', () => {
  it('deletes a few of the oldest entries per change, never thousands in one write', async () => {
    const storage = openSqliteStorage(join(dir, 'trim.db'));
    after(() => storage.close());
    const entry = (index: number) => ({
      op: 'put' as const,
      key: key(index),
      value: Buffer.from(JSON.stringify({ index, time: new Date().toISOString(), ...change(`secret/${index}`) })),
    });
    await storage.transaction(Array.from({ length: 10_000 }, (_, i) => entry(i + 1)));
    const log = new ChangeLog(storage);
    await log.load();
    // The other node appends 2,000 more; this one hears of them. It used to delete all 2,000 with its next change,
    // a write PostgreSQL's notification could not name (every other node then dropped every cache).
    await storage.transaction(Array.from({ length: 2_000 }, (_, i) => entry(10_001 + i)));
    await log.ingest(key(12_000));
    const staged = log.stage(change('secret/next'));
    await staged.publish(storage.transaction(staged.ops));
    const deletes = staged.ops.filter((op) => op.op === 'delete').map((op) => op.key);
    assert.deepEqual(deletes, [key(1), key(2), key(3), key(4)]);
    // Each later change goes on from there, so the log comes back to its size.
    for (let i = 0; i < 10; i++) await log.append(change(`secret/more-${i}`));
    const keys = await storage.list('');
    assert.equal(keys[0], key(45));
    assert.equal(keys.at(-1), key(12_011));
  });
});

describe('ChangeLog: a subscriber asking for entries already trimmed', () => {
  it('gets a reset, and the log goes on trimming its oldest entries', async () => {
    const storage = openSqliteStorage(join(dir, 'trim-after-reset.db'));
    after(() => storage.close());
    const entry = (index: number) => ({
      op: 'put' as const,
      key: key(index),
      value: Buffer.from(JSON.stringify({ index, time: new Date().toISOString(), ...change(`secret/${index}`) })),
    });
    await storage.transaction(Array.from({ length: 10_000 }, (_, i) => entry(i + 1)));
    const log = new ChangeLog(storage);
    await log.load();
    await log.append(change('secret/first-trim')); // the log is full: its oldest entry goes
    const controller = new AbortController();
    const stream = log.subscribe(0, controller.signal);
    assert.deepEqual((await stream.next()).value, { type: 'reset', index: 10_001 });
    controller.abort();
    await stream.return(undefined);
    const staged = log.stage(change('secret/next'));
    await staged.publish(storage.transaction(staged.ops));
    assert.deepEqual(
      staged.ops.filter((op) => op.op === 'delete').map((op) => op.key),
      [key(2)],
    );
  });
});

describe('ChangeLog: a subscriber resuming from entries another node trimmed', () => {
  it('gets a reset, not the events after the gap as if nothing were missing', async () => {
    const { storage, log } = await oneNode('trimmed-elsewhere.db');
    for (let i = 0; i < 6; i++) await log.append(change(`secret/${i}`));
    // The other node trimmed the three oldest; this node's own trimming point is still at the first.
    await storage.transaction([1, 2, 3].map((index) => ({ op: 'delete' as const, key: key(index) })));
    const controller = new AbortController();
    const stream = log.subscribe(1, controller.signal);
    const first = await stream.next();
    controller.abort();
    await stream.return(undefined);
    assert.deepEqual(first.value, { type: 'reset', index: 6 });
  });
});

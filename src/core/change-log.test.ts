import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { ChangeLog, type ChangeEvent, type Delivery } from './change-log.js';
import { StorageConflictError, type Committed, type Storage, type StorageOp } from './storage.js';

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
  // What was told just before is still on its way through the subscription when stopping.
  const stop = async () => {
    await sleep(20);
    controller.abort();
    await done;
  };
  return { seen, stop };
}

const change = (path: string) => ({ kind: 'write' as const, path, aclPath: path, requestPath: path });
const key = (index: number) => index.toString().padStart(16, '0');

/**
 * A change of `log` committed to the store (another node can read it there, and the store gave it its index) whose
 * commit this node has not heard is done until commit(), as in the barrier, whose read cache holds the value before
 * the change until then.
 */
async function inFlight(log: ChangeLog, path: string, storage: Storage) {
  const staged = log.stage(change(path));
  const keys = await storage.transaction(staged.ops);
  let committed!: (keys: Committed) => void;
  const publishing = staged.publish(new Promise<Committed>((resolve) => (committed = resolve)));
  return { index: Number(keys![0]), commit: () => (committed(keys), publishing) };
}

/** The notification of another node's entry at `index`. */
const hear = (log: ChangeLog, ...indexes: number[]) => log.invalidation.apply!(indexes.map(key));

/** Resolves once `check` holds (a log reads the store after a gap in the background). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
  assert.ok(check(), what);
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
  await hear(b, 1);
  return { storage, a, b };
}

describe('ChangeLog on a store shared by two nodes', () => {
  it('a change from the other node reaches local subscribers, once', async () => {
    const { storage, a, b } = await twoNodes('a.db');
    const onB = subscriber(b);
    const written = await a.append(change('secret/x'));
    await hear(b, written.index);
    await hear(b, written.index); // a repeated notification tells nothing twice
    const next = await b.append(change('secret/y'));
    assert.equal(next.index, written.index + 1, 'the store gives the next index');
    await onB.stop();
    assert.deepEqual(
      onB.seen.map((e) => e.path),
      ['secret/x', 'secret/y'],
    );
    await storage.close();
  });

  it('two nodes appending at once lose no change: each index once, told on both nodes in index order', async () => {
    const storage = openSqliteStorage(join(dir, 'b.db'));
    after(() => storage.close());
    const [a, b] = [new ChangeLog(storage), new ChangeLog(storage)];
    await a.load();
    await b.load();
    const [onA, onB] = [subscriber(a), subscriber(b)];
    // Each node hears the other's entries as they commit (a notification each), its own as its commits settle.
    const writes = (from: ChangeLog, to: ChangeLog, name: string) =>
      Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const event = await from.append(change(`secret/${name}/${i}`));
          await hear(to, event.index);
          return event.index;
        }),
      );
    const indexes = (await Promise.all([writes(a, b, 'a'), writes(b, a, 'b')])).flat();
    assert.deepEqual(
      indexes.sort((x, y) => x - y),
      Array.from({ length: 400 }, (_, i) => i + 1),
    );
    await until(() => onA.seen.length === 400 && onB.seen.length === 400, 'both told every change');
    await onA.stop();
    await onB.stop();
    for (const seen of [onA.seen, onB.seen]) {
      assert.deepEqual(
        seen.map((e) => e.index),
        Array.from({ length: 400 }, (_, i) => i + 1),
      );
    }
    assert.deepEqual(onA.seen, onB.seen, 'the same events, each as the store holds it');
  });

  it('with nobody subscribed it reads no event of the other node, and a later subscriber reads the backlog', async () => {
    const { storage, a, b } = await twoNodes('c.db');
    const written = await a.append(change('secret/x'));
    const reads = storage.stats().reads;
    await hear(b, written.index);
    assert.equal(storage.stats().reads, reads, 'no subscriber on b: the event is not read');
    assert.equal(b.lastIndex, written.index);
    await b.append(change('secret/from-b'));
    const seen: string[] = [];
    for await (const delivery of b.subscribe(0, AbortSignal.timeout(5000))) {
      if (delivery.type === 'event') seen.push(delivery.event.path);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, ['secret/before', 'secret/x', 'secret/from-b']);
  });
});

describe("ChangeLog: the other node's next change is heard while this node's change is still being committed", () => {
  it('is told after it, to subscribers live and new, and "now" stays before this node\'s change', async () => {
    const { storage, a, b } = await twoNodes('held-back.db');
    const live = subscriber(a);
    // a's change is in the store at 2 (b reads it there and writes after it); a has not heard its commit is done.
    const fromA = await inFlight(a, 'secret/from-a', storage);
    assert.equal(fromA.index, 2);
    await hear(b, 2);
    const fromB = await b.append(change('secret/from-b'));
    assert.equal(fromB.index, 3);
    await hear(a, 3);
    assert.equal(a.lastIndex, 1, '"now" is before a\'s change, which is not readable on a yet');
    const late = subscriber(a);
    await sleep(50);
    assert.equal(live.seen.length, 0, "nothing is told before a's own change");
    await fromA.commit();
    await until(() => live.seen.length === 2 && late.seen.length === 2, 'both told both');
    await live.stop();
    await late.stop();
    for (const seen of [live.seen, late.seen]) {
      assert.deepEqual(
        seen.map((e) => e.path),
        ['secret/from-a', 'secret/from-b'],
      );
    }
    assert.equal(a.lastIndex, 3);
  });

  it('the same when nobody was subscribed as it was heard, and a subscriber came before the commit was done', async () => {
    const { storage, a, b } = await twoNodes('held-back-unsubscribed.db');
    const fromA = await inFlight(a, 'secret/from-a', storage);
    await hear(b, 2);
    await b.append(change('secret/from-b'));
    await hear(a, 3); // nobody subscribed on a
    const late = subscriber(a);
    await sleep(10);
    await fromA.commit();
    await until(() => late.seen.length === 2, 'told both');
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/from-a', 'secret/from-b'],
    );
  });

  it("and with two changes of its own in flight and the other node's between them, each is told in order", async () => {
    const { storage, a, b } = await twoNodes('held-back-interleaved.db');
    const fromB = async (path: string, at: number) => {
      await hear(b, at - 1);
      assert.equal((await b.append(change(path))).index, at);
      await hear(a, at); // nobody subscribed on a: only the index is taken
    };
    const a2 = await inFlight(a, 'secret/a-2', storage);
    await fromB('secret/b-3', 3);
    const a4 = await inFlight(a, 'secret/a-4', storage);
    await fromB('secret/b-5', 5);
    assert.equal(a.lastIndex, 1);
    const late = subscriber(a);
    await sleep(10);
    await a2.commit();
    assert.equal(a.lastIndex, 3, 'not past a-4, still in flight');
    await a4.commit();
    await until(() => late.seen.length === 4, 'told all four');
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/a-2', 'secret/b-3', 'secret/a-4', 'secret/b-5'],
    );
    assert.equal(a.lastIndex, 5);
  });

  it('a notification that never came is made up for by reading the store again (reload)', async () => {
    const { a, b } = await twoNodes('reload.db');
    const onA = subscriber(a);
    await b.append(change('secret/unheard-1'));
    await b.append(change('secret/unheard-2'));
    await a.invalidation.reload!();
    await until(() => onA.seen.length === 2, 'told both');
    await onA.stop();
    assert.deepEqual(
      onA.seen.map((e) => e.path),
      ['secret/unheard-1', 'secret/unheard-2'],
    );
    assert.equal(a.lastIndex, 3);
  });

  it('a gap left by a lost notification, behind one that came, is read from the store', async () => {
    const { a, b } = await twoNodes('gap.db');
    const onA = subscriber(a);
    await b.append(change('secret/unheard'));
    const heard = await b.append(change('secret/heard'));
    await hear(a, heard.index);
    await until(() => onA.seen.length === 2, 'told both, in order');
    await onA.stop();
    assert.deepEqual(
      onA.seen.map((e) => e.path),
      ['secret/unheard', 'secret/heard'],
    );
    assert.equal(a.lastIndex, 3);
  });
});

describe('ChangeLog: reading the store for a gap, and only then', () => {
  /** The log's store, counting its listings. */
  function counted(storage: Storage) {
    const count = { lists: 0 };
    const wrapped: Storage = Object.assign(Object.create(storage) as Storage, {
      list: (prefix: string) => (count.lists++, storage.list(prefix)),
    });
    return { wrapped, count };
  }

  it('a notification that comes late, but within the grace, closes the gap without a read of the store', async () => {
    const { storage, a, b } = await twoNodes('late.db');
    const { wrapped, count } = counted(storage);
    const c = new ChangeLog(wrapped);
    await c.load();
    await hear(c, 1);
    const first = await a.append(change('secret/late'));
    const second = await b.append(change('secret/on-time'));
    const lists = count.lists;
    await hear(c, second.index);
    await sleep(100);
    await hear(c, first.index);
    await sleep(600);
    assert.equal(count.lists, lists, 'the store was listed for a gap that its notification closed');
    assert.equal(c.lastIndex, second.index);
  });

  it('an index heard far above anything stored is read for at a pace, never in a loop', async () => {
    const { storage, a } = await twoNodes('bogus.db');
    const { wrapped, count } = counted(storage);
    const c = new ChangeLog(wrapped);
    await c.load();
    const lists = count.lists;
    await hear(c, 1_000_000);
    await sleep(1_500);
    assert.ok(count.lists - lists <= 8, `${count.lists - lists} listings in 1.5 s`);
    // What is really appended is still told.
    const onC = subscriber(c);
    const next = await a.append(change('secret/real'));
    await hear(c, next.index);
    await until(() => onC.seen.length === 1, 'told the real change');
    await onC.stop();
    await c.load(); // what was heard before a load is forgotten
    assert.equal(c.lastIndex, next.index);
  });
});

describe('ChangeLog: loaded again (an unseal) under a live subscriber', () => {
  it('tells it to resynchronise: what other nodes wrote while this one was sealed was never heard', async () => {
    const { a, b } = await twoNodes('reloaded.db');
    const controller = new AbortController();
    const stream = a.subscribe(a.lastIndex, controller.signal);
    const first = stream.next();
    // a is sealed: it hears nothing while b writes; then it is unsealed and loads the log again.
    await b.append(change('secret/while-sealed'));
    await a.load();
    assert.deepEqual((await first).value, { type: 'reset', index: 2 });
    const next = stream.next();
    await b.append(change('secret/after'));
    await hear(a, 3);
    assert.equal(pathOf(await next), 'secret/after');
    controller.abort();
    await stream.return(undefined);
  });

  it('with a commit of its own in flight (a seal that stopped waiting for it), tells that change once', async () => {
    const { storage, a, b } = await twoNodes('load-in-flight-shared.db');
    const a2 = await inFlight(a, 'secret/a-2', storage);
    await b.append(change('secret/b-3'));
    await a.load();
    assert.equal(a.lastIndex, 3, 'both are in the store, which the seal left the only source of reads');
    const controller = new AbortController();
    const stream = a.subscribe(1, controller.signal);
    assert.equal(pathOf(await stream.next()), 'secret/a-2');
    assert.equal(pathOf(await stream.next()), 'secret/b-3');
    const next = stream.next();
    assert.equal((await a2.commit()).index, 2);
    await a.append(change('secret/a-4'));
    assert.equal(pathOf(await next), 'secret/a-4', 'a-2 is not told again');
    controller.abort();
    await stream.return(undefined);
  });
});

describe('ChangeLog: a subscriber that starts while a change is being committed', () => {
  it('gets that change, which it could not have read yet', async () => {
    const { storage, log } = await oneNode('c.db');
    await log.append(change('secret/before'));
    const staged = log.stage(change('secret/in-flight'));
    const startedAt = log.lastIndex;
    const late = subscriber(log);
    const published = await staged.publish(storage.transaction(staged.ops));
    await late.stop();
    assert.deepEqual(
      late.seen.map((e) => e.path),
      ['secret/in-flight'],
    );
    assert.equal(startedAt, published.index - 1, 'a subscriber from now starts before the uncommitted change');
    assert.equal(log.lastIndex, published.index);
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
    const { storage, log } = await oneNode('d.db');
    const live = subscriber(log);
    const conflict = log.stage(change('secret/refused'));
    await assert.rejects(conflict.publish(Promise.reject(new StorageConflictError('x'))), StorageConflictError);
    assert.equal(log.lastIndex, 0, 'a check that failed wrote nothing: not "now"');
    // A commit whose outcome is unknown may have landed: the store is read, where here it is not.
    const failed = log.stage(change('secret/lost'));
    await assert.rejects(failed.publish(Promise.reject(new Error('connection lost'))), /connection lost/);
    const next = await log.append(change('secret/next'));
    assert.equal(next.index, 1);
    assert.equal(log.lastIndex, 1);
    await live.stop();
    assert.deepEqual(
      live.seen.map((e) => e.path),
      ['secret/next'],
    );
    assert.equal((await storage.list('')).length, 1);
  });

  it('one of unknown outcome that did land is read from the store by live subscribers', async () => {
    const { storage, log } = await oneNode('landed.db');
    const live = subscriber(log);
    const landed = log.stage(change('secret/landed'));
    await storage.transaction(landed.ops);
    await assert.rejects(landed.publish(Promise.reject(new Error('connection lost'))), /connection lost/);
    await until(() => live.seen.length === 1, 'told of it');
    await live.stop();
    assert.deepEqual(
      live.seen.map((e) => e.path),
      ['secret/landed'],
    );
    assert.equal(log.lastIndex, 1);
  });
});

/** An entry as builds before store-given indexes wrote it: a plain put of the event, its index in it too. */
const olderEntry = (index: number) => ({
  op: 'put' as const,
  key: key(index),
  value: Buffer.from(JSON.stringify({ index, time: new Date().toISOString(), ...change(`secret/${index}`) })),
});

describe('ChangeLog: trimming after the other node appended many', () => {
  it('deletes a few of the oldest entries per change, never thousands in one write', async () => {
    const storage = openSqliteStorage(join(dir, 'trim.db'));
    after(() => storage.close());
    await storage.transaction(Array.from({ length: 10_000 }, (_, i) => olderEntry(i + 1)));
    const log = new ChangeLog(storage);
    await log.load();
    // The other node appends 2,000 more; this one hears of the last. It used to delete all 2,000 with its next
    // change, a write PostgreSQL's notification could not name (every other node then dropped every cache).
    await storage.transaction(Array.from({ length: 2_000 }, (_, i) => olderEntry(10_001 + i)));
    await hear(log, 12_000);
    await until(() => log.lastIndex === 12_000, 'the gap read from the store');
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

describe('ChangeLog: trimming with a change whose commit fails', () => {
  /** A log three entries past its size: each change then trims four, the most it may. */
  const fullLog = async (file: string) => {
    const storage = openSqliteStorage(join(dir, file));
    after(() => storage.close());
    await storage.transaction(Array.from({ length: 10_003 }, (_, i) => olderEntry(i + 1)));
    const log = new ChangeLog(storage);
    await log.load();
    return { storage, log };
  };
  const deletes = (ops: StorageOp[]) => ops.filter((op) => op.op === 'delete').map((op) => op.key);

  it('leaves its deletions to the next changes, refused or of unknown outcome', async () => {
    const { storage, log } = await fullLog('trim-refused.db');
    const refused = log.stage(change('secret/refused'));
    assert.deepEqual(deletes(refused.ops), [key(1), key(2), key(3), key(4)]);
    await assert.rejects(refused.publish(Promise.reject(new StorageConflictError('x'))), StorageConflictError);
    const lost = log.stage(change('secret/lost'));
    assert.deepEqual(deletes(lost.ops), [key(1), key(2), key(3), key(4)], 'sent again, before any newer trim');
    await assert.rejects(lost.publish(Promise.reject(new Error('connection lost'))), /connection lost/);
    const next = log.stage(change('secret/next'));
    assert.deepEqual(deletes(next.ops), [key(1), key(2), key(3), key(4)]);
    await next.publish(storage.transaction(next.ops));
    await log.append(change('secret/after'));
    const keys = await storage.list('');
    assert.equal(keys[0], key(6), 'the trims sent again done, then the next oldest');
    assert.equal(keys.at(-1), key(10_005));
  });

  it('forgets them once the log is loaded again (a restored store may hold other entries at those indexes)', async () => {
    const restored = (storage: Storage) =>
      storage.transaction(Array.from({ length: 103 }, (_, i) => ({ op: 'delete' as const, key: key(i + 1) })));
    const refusal = () => Promise.reject(new StorageConflictError('x'));
    for (const refusedBeforeTheLoad of [true, false]) {
      const { storage, log } = await fullLog(`trim-reloaded-${refusedBeforeTheLoad}.db`);
      const refused = log.stage(change('secret/refused'));
      if (refusedBeforeTheLoad) await assert.rejects(refused.publish(refusal()), StorageConflictError);
      await restored(storage);
      await log.load();
      if (!refusedBeforeTheLoad) await assert.rejects(refused.publish(refusal()), StorageConflictError);
      const next = log.stage(change('secret/next'));
      assert.deepEqual(deletes(next.ops), [], 'the log as loaded is below its size: nothing to trim');
    }
  });
});

describe('ChangeLog: a subscriber asking for entries already trimmed', () => {
  it('gets a reset, and the log goes on trimming its oldest entries', async () => {
    const storage = openSqliteStorage(join(dir, 'trim-after-reset.db'));
    after(() => storage.close());
    await storage.transaction(Array.from({ length: 10_000 }, (_, i) => olderEntry(i + 1)));
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
    // Entries of older builds are read as they were written: the backlog of a resume point still kept.
    const backlog = log.subscribe(10_000, AbortSignal.timeout(5000));
    assert.equal(pathOf(await backlog.next()), 'secret/first-trim');
    await backlog.return(undefined);
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

describe('ChangeLog: a subscriber resuming past every entry the store holds', () => {
  it('gets a reset (a snapshot restored since rolled the log back), then the changes that follow', async () => {
    const { log } = await oneNode('resume-past-newest.db');
    for (let i = 0; i < 3; i++) await log.append(change(`secret/${i}`));
    const controller = new AbortController();
    // Index 7 was given in the history before the restore; this log's newest is 3, and 4 to 7 will be given again.
    const stream = log.subscribe(7, AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]));
    assert.deepEqual((await stream.next()).value, { type: 'reset', index: 3 });
    const next = stream.next();
    await log.append(change('secret/after'));
    const event = await next;
    controller.abort();
    await stream.return(undefined);
    assert.equal(pathOf(event), 'secret/after');
    assert.equal(!event.done && event.value.type === 'event' && event.value.event.index, 4);
  });

  it('but not at the newest entry it holds: the next change follows', async () => {
    const { log } = await oneNode('resume-at-newest.db');
    for (let i = 0; i < 3; i++) await log.append(change(`secret/${i}`));
    const controller = new AbortController();
    const stream = log.subscribe(3, AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]));
    const first = stream.next();
    await log.append(change('secret/next'));
    const delivered = await first;
    controller.abort();
    await stream.return(undefined);
    assert.equal(pathOf(delivered), 'secret/next');
  });

  it('nor at an entry another node committed that this node has not heard of yet', async () => {
    const { a, b } = await twoNodes('resume-at-unheard.db');
    const unheard = await a.append(change('secret/unheard-on-b'));
    assert.equal(b.lastIndex, 1, 'b has not heard of index 2');
    const controller = new AbortController();
    const stream = b.subscribe(unheard.index, AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]));
    const first = stream.next();
    const later = await a.append(change('secret/later'));
    await hear(b, unheard.index, later.index);
    const delivered = await first;
    controller.abort();
    await stream.return(undefined);
    assert.equal(pathOf(delivered), 'secret/later');
  });
});

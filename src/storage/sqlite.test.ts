import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Storage } from '../core/storage.js';
import { prefixEnd } from './key-range.js';
import { openSqliteStorage, type SqliteStorage } from './sqlite.js';
import { bytes, storageContract, text } from './test-harness.js';

describe('SqliteStorage', () => {
  let dir: string;
  let n = 0;
  const files = new WeakMap<Storage, string>();
  const fresh = (): { file: string; s: SqliteStorage } => {
    const file = path.join(dir, `db${n++}`, 'cofre.db');
    return { file, s: openSqliteStorage(file) };
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-sqlite-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  storageContract({
    open: async () => {
      const { file, s } = fresh();
      files.set(s, file);
      return s;
    },
    reopen: async (s) => {
      await s.close();
      const file = files.get(s) ?? assert.fail('not a store of this harness');
      const again = openSqliteStorage(file);
      files.set(again, file);
      return again;
    },
    openFailingOn: async (key, seed) => {
      // The storage holds an exclusive lock while open, so the trigger is added while it is closed.
      const { file, s } = fresh();
      for (const { key: k, value } of seed) await s.put(k, value);
      await s.close();
      const other = new Database(file);
      other.exec(
        `CREATE TRIGGER boom BEFORE INSERT ON kv WHEN NEW.key = '${key}' BEGIN SELECT RAISE(ABORT, 'boom'); END`,
      );
      other.close();
      return openSqliteStorage(file);
    },
  });

  it('creates the parent directory', async () => {
    const { file, s } = fresh();
    assert.ok(fs.existsSync(file));
    await s.close();
  });

  it('computes a tight upper bound for a prefix', () => {
    assert.equal(prefixEnd(''), undefined);
    assert.equal(prefixEnd('a/'), 'a0');
    assert.equal(prefixEnd('a\u{10FFFF}'), 'b');
    assert.equal(prefixEnd('\uD7FF'), '\uE000');
    assert.equal(prefixEnd('\u{10FFFF}'), undefined);
  });

  it('a failing caller does not poison its group-committed batch', async () => {
    // A trigger makes one specific insert fail inside SQLite, midway through a transaction. The storage holds an
    // exclusive lock while open, so the trigger is added before, and the storage reopened on the same file.
    const first = fresh();
    await first.s.put('keep', bytes('old'));
    await first.s.close();
    const other = new Database(first.file);
    other.exec("CREATE TRIGGER boom BEFORE INSERT ON kv WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END");
    other.close();
    const s = openSqliteStorage(first.file);

    const before = s.stats().commits;
    const bad = s.transaction([
      { op: 'delete', key: 'keep' },
      { op: 'put', key: 't1', value: bytes('1') },
      { op: 'put', key: 'boom', value: bytes('x') },
      { op: 'put', key: 't2', value: bytes('2') },
    ]);
    const good1 = s.put('p1', bytes('p1'));
    const good2 = s.transaction([
      { op: 'put', key: 'g1', value: bytes('g1') },
      { op: 'put', key: 'g2', value: bytes('g2') },
    ]);
    await assert.rejects(bad, /boom/);
    await good1;
    await good2;
    assert.equal(s.stats().commits, before + 1, 'all three callers shared one commit');
    assert.equal(text(await s.get('keep')), 'old');
    assert.equal(await s.get('t1'), undefined);
    assert.equal(await s.get('t2'), undefined);
    assert.equal(text(await s.get('p1')), 'p1');
    assert.equal(text(await s.get('g2')), 'g2');

    await s.close();
  });

  it("tells how long each commit took, a wait for the file's write lock included", async () => {
    const { file, s } = fresh();
    const times: number[] = [];
    s.onCommit((seconds) => times.push(seconds));
    await s.put('a', bytes('1'));
    assert.equal(times.length, 1, 'one commit, told once');
    assert.ok(times[0]! > 0 && times[0]! < 5, `${times[0]} s`);
    // Another connection holds the write lock for 300 ms: the commit waits for it (busy_timeout), and says so.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const write = s.put('b', bytes('2'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    other.exec('COMMIT');
    other.close();
    await write;
    assert.equal(times.length, 2);
    assert.ok(times[1]! >= 0.25, `the commit that waited took ${times[1]} s`);
    assert.equal(s.stats().commits, times.length, 'every commit was told, and only commits');
    await s.close();
  });

  it('group-commits concurrent writes', async () => {
    const { s } = fresh();
    const before = s.stats();
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.put(`k/${i}`, bytes(String(i)))));
    const after = s.stats();
    assert.equal(after.writes - before.writes, 200);
    assert.ok(after.commits - before.commits >= 1);
    assert.ok(after.commits - before.commits < 20, `expected batching, got ${after.commits - before.commits} commits`);
    assert.equal((await s.list('k/')).length, 200);
    assert.equal(text(await s.get('k/199')), '199');

    // Writes issued after a flush go into a later commit.
    await s.put('later', bytes('1'));
    assert.equal(s.stats().commits, after.commits + 1);
    await s.close();
  });

  it('reads see only committed data', async () => {
    const { s } = fresh();
    const p = s.put('k', bytes('v'));
    assert.equal(await s.get('k'), undefined, 'a pending write is not visible');
    await p;
    assert.equal(text(await s.get('k')), 'v');
    await s.close();
  });

  it('sets WAL, synchronous=FULL and a busy timeout', async () => {
    const { file, s } = fresh();
    assert.equal(s.pragma('journal_mode'), 'wal');
    assert.equal(s.pragma('synchronous'), 2); // FULL
    assert.ok(Number(s.pragma('busy_timeout')) > 0);
    await s.close();
    const raw = new Database(file, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal', 'WAL is persisted in the file');
    raw.close();
  });

  it('holds the file exclusively: a second server on the same file cannot open it', async () => {
    const { file, s } = fresh();
    await s.put('mine', bytes('1'));
    assert.throws(() => openSqliteStorage(file), /in use by another Cofre server/);
    await s.close();
    // Closed (or its process gone): the file can be opened again, with what was written.
    const again = openSqliteStorage(file);
    assert.equal(text(await again.get('mine')), '1');
    await again.close();
  });

  it('writes from a stale connection cannot slip past the commit thread', async () => {
    const { s } = fresh();
    const reader = (s as unknown as { db: Database.Database }).db;
    assert.throws(() => reader.prepare("INSERT INTO kv (key, value) VALUES ('x', x'00')").run(), /readonly/);
    await s.close();
  });

  it('keeps serving reads while a commit is on its way to disk', async () => {
    const { s } = fresh();
    await s.put('before', bytes('1'));
    const writes = Array.from({ length: 500 }, (_, i) => s.put(`w/${i}`, bytes('x'.repeat(512))));
    // The loop is free while the thread commits: reads answer before the writes are acknowledged.
    let readsBeforeAck = 0;
    let acknowledged = false;
    void Promise.all(writes).then(() => (acknowledged = true));
    while (!acknowledged) {
      assert.equal(text(await s.get('before')), '1');
      readsBeforeAck++;
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(readsBeforeAck > 1, `only ${readsBeforeAck} reads ran while 500 writes were committed`);
    assert.equal((await s.list('w/')).length, 500);
    await s.close();
  });

  it('close flushes pending writes into the file', async () => {
    const { file, s } = fresh();
    const pending = s.put('pending', bytes('1'));
    const pendingTx = s.transaction([{ op: 'delete', key: 'nothing' }]);
    await s.close();
    await pending;
    await pendingTx;
    // What is refused after close is in the shared contract; here: the file itself has the writes.
    const raw = new Database(file, { readonly: true });
    assert.equal(raw.prepare('SELECT count(*) FROM kv').pluck().get(), 1);
    raw.close();
  });
});

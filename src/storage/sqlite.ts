/**
 * SQLite adapter of the storage port: one WITHOUT ROWID table, WAL, synchronous=FULL.
 *
 * Writes are group-committed: put/delete/transaction only enqueue, and a setImmediate flush applies everything
 * queued during the current event-loop turn in one SQLite transaction, so concurrent writers share one fsync.
 * Each caller's ops run inside their own savepoint, so a failing caller is rolled back and rejected alone.
 *
 * Reads go straight to SQLite and see only committed data: a write is invisible until its promise is about to
 * resolve (the flush commits before it resolves anyone), so a read always sees every already-resolved write.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Storage, StorageOp } from '../core/storage.js';
import { prefixEnd } from './key-range.js';

export interface SqliteStats {
  /** SQLite transactions committed by the group-commit flush. */
  commits: number;
  /** put/delete/transaction calls that were committed. */
  writes: number;
  /** get() calls that reached SQLite. */
  reads: number;
}

interface Waiter {
  ops: StorageOp[];
  resolve: () => void;
  reject: (err: unknown) => void;
  failed?: { err: unknown };
}

export function openSqliteStorage(file: string): SqliteStorage {
  return new SqliteStorage(file);
}

export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string], Buffer>;
  private readonly rangeStmt: Database.Statement<[string, string], string>;
  private readonly fromStmt: Database.Statement<[string], string>;
  private readonly applyBatch: (batch: Waiter[]) => void;
  private queue: Waiter[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private counters: SqliteStats = { commits: 0, writes: 0, reads: 0 };

  constructor(file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    this.db = db;
    // One Cofre process owns its file. Exclusive locking keeps the WAL index in process memory instead of
    // taking shared-memory file locks on every read (half the CPU of a read was those syscalls), and makes a
    // second server on the same file fail to start instead of sharing it unsafely.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    // WAL's default (NORMAL) may lose the last commits on power loss; put() promises durability.
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID');

    this.getStmt = db.prepare<[string], Buffer>('SELECT value FROM kv WHERE key = ?').pluck();
    this.rangeStmt = db
      .prepare<[string, string], string>('SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key')
      .pluck();
    this.fromStmt = db.prepare<[string], string>('SELECT key FROM kv WHERE key >= ? ORDER BY key').pluck();
    const put = db.prepare(
      'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    const del = db.prepare('DELETE FROM kv WHERE key = ?');

    // Nested better-sqlite3 transactions are savepoints: this one isolates a single caller inside the batch.
    const applyCall = db.transaction((ops: StorageOp[]) => {
      for (const op of ops) {
        if (op.op === 'put') put.run(op.key, op.value);
        else del.run(op.key);
      }
    });
    this.applyBatch = db.transaction((batch: Waiter[]) => {
      for (const w of batch) {
        try {
          applyCall(w.ops);
        } catch (err) {
          // Some errors (SQLITE_FULL, IOERR, ...) make SQLite roll back the whole transaction; going on would
          // autocommit the rest one by one while earlier callers' writes are already gone, so fail the batch.
          if (!db.inTransaction) throw err;
          w.failed = { err };
        }
      }
    });
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    this.counters.reads++;
    return this.getStmt.get(checkKey(key));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    return this.enqueue([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<void> {
    return this.enqueue([{ op: 'delete', key }]);
  }

  async transaction(ops: StorageOp[]): Promise<void> {
    return this.enqueue(ops);
  }

  /**
   * The store as of one instant, for snapshots taken while writes go on: an online backup into a private
   * temporary file (SQLite keeps a backup consistent with writes made through this same connection), read from
   * there and deleted on release. It holds what the store holds: barrier-encrypted bytes only.
   */
  async openReadView(): Promise<Pick<Storage, 'get' | 'list'> & { release(): Promise<void> }> {
    this.assertOpen();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-read-view-'));
    try {
      await this.db.backup(path.join(dir, 'view.db'));
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const view = new SqliteStorage(path.join(dir, 'view.db'));
    return {
      get: (key) => view.get(key),
      list: (prefix) => view.list(prefix),
      release: async () => {
        await view.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  async list(prefix: string): Promise<string[]> {
    this.assertOpen();
    checkKey(prefix);
    const end = prefixEnd(prefix);
    const out: string[] = [];
    let from = prefix;
    // Skip-scan: once a child folder is found, seek past its whole subtree instead of reading every descendant.
    scan: for (;;) {
      for (const key of end === undefined ? this.fromStmt.iterate(from) : this.rangeStmt.iterate(from, end)) {
        // Holds given a correct bound; checked anyway so that a wrong one cannot make the seek below loop forever.
        if (!key.startsWith(prefix)) return out;
        const rest = key.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash < 0) {
          if (rest !== '') out.push(rest);
          continue;
        }
        out.push(rest.slice(0, slash + 1));
        from = prefix + rest.slice(0, slash) + '0'; // '0' is the character right after '/'
        continue scan;
      }
      return out;
    }
  }

  /** Flushes pending writes, then closes the database. Closing twice is a no-op. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    this.db.close();
  }

  stats(): SqliteStats {
    return { ...this.counters };
  }

  /** For diagnostics and tests: the connection's current value of a pragma. */
  pragma(name: 'journal_mode' | 'synchronous' | 'busy_timeout'): unknown {
    this.assertOpen();
    return this.db.pragma(name, { simple: true });
  }

  private enqueue(ops: StorageOp[]): Promise<void> {
    this.assertOpen();
    // Copy values now: the caller may reuse its buffer before the flush runs.
    const copied = ops.map((op): StorageOp => {
      checkKey(op.key);
      if (op.op === 'delete') return { op: 'delete', key: op.key };
      if (op.op !== 'put') throw new TypeError('storage op must be put or delete');
      if (!(op.value instanceof Uint8Array)) throw new TypeError('storage value must be a Uint8Array');
      return { op: 'put', key: op.key, value: Buffer.from(op.value) };
    });
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops: copied, resolve, reject });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    try {
      this.applyBatch(batch);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    this.counters.commits++;
    for (const w of batch) {
      if (w.failed) {
        w.reject(w.failed.err);
      } else {
        this.counters.writes++;
        w.resolve();
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('sqlite storage is closed');
  }
}

function checkKey(key: string): string {
  if (typeof key !== 'string') throw new TypeError('storage key must be a string');
  return key;
}

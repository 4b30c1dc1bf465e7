/**
 * SQLite adapter of the storage port: one WITHOUT ROWID table, WAL, synchronous=FULL.
 *
 * Writes are group-committed off the event loop: put/delete/transaction only enqueue, a setImmediate flush hands
 * everything queued during the current event-loop turn to the commit thread (sqlite-commit-thread.ts), and the
 * thread commits whatever flushes are waiting in one SQLite transaction, so concurrent writers share one fsync while
 * this loop goes on serving requests. Each caller's ops run inside their own savepoint, so a failing caller is
 * rolled back and rejected alone.
 *
 * Reads go straight to SQLite on this thread's own connection and see only committed data: a write is invisible
 * until the commit thread has committed it, and its promise resolves only then, so a read always sees every
 * already-resolved write (WAL: each read starts from the latest commit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StorageConflictError, type Committed, type Storage, type StorageOp } from '../core/storage.js';
import { CallEncoder, decodeCalls } from './commit-batch.js';
import { CommitTimes, type CommitListener } from './commit-times.js';
import { prefixEnd } from './key-range.js';
import type { ChangesMessage, CommitReply, CommitRequest, CommitThreadData } from './sqlite-commit-thread.js';
import { errorMessage, groupCommitter, openStoreFile } from './sqlite-writer.js';
import { startThread } from './thread-script.js';

export interface SqliteStats {
  /** SQLite transactions committed (group commits). */
  commits: number;
  /** put/delete/transaction calls that were committed. */
  writes: number;
  /** get() calls that reached SQLite. */
  reads: number;
}

interface Waiter {
  resolve: (committed: Committed) => void;
  reject: (err: unknown) => void;
}

/** Where flushed batches go to be committed; the reply comes back through the storage's settle(). */
interface Committer {
  submit(request: CommitRequest): void;
  /** Commits what was submitted, then stops. */
  close(): Promise<void>;
  /** Handles, now, every message already waiting from a shared commit thread (replies and other threads' changes). */
  drain?(): void;
}

/** A server thread's connection to a commit thread that several threads share (src/workers/). */
export interface CommitClient {
  port: MessagePort;
  /** The keys another thread committed. */
  onChanges(keys: string[]): void;
}

export function openSqliteStorage(file: string): SqliteStorage {
  return new SqliteStorage(file);
}

export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly lock: Database.Database | undefined;
  private readonly getStmt: Database.Statement<[string], Buffer>;
  private readonly rangeStmt: Database.Statement<[string, string], string>;
  private readonly fromStmt: Database.Statement<[string], string>;
  protected readonly committer: Committer;
  private committerError: Error | undefined;
  /** The callers of the writes in `encoder`, in order. */
  private queue: Waiter[] = [];
  private readonly encoder = new CallEncoder();
  private readonly inFlight = new Map<number, Waiter[]>();
  private nextSeq = 1;
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private counters: SqliteStats = { commits: 0, writes: 0, reads: 0 };
  private readonly commitTimes = new CommitTimes();

  /** `client`: commit through a commit thread shared with other server threads, whose parent holds the file's lock. */
  constructor(file: string, client?: CommitClient) {
    const inMemory = file === ':memory:';
    if (inMemory && client) throw new Error('an in-memory store cannot be shared by server threads');
    if (!inMemory) fs.mkdirSync(path.dirname(file), { recursive: true });
    this.lock = inMemory || client ? undefined : holdFile(file);
    try {
      this.db = openStoreFile(file);
    } catch (err) {
      this.lock?.close();
      throw err;
    }
    const db = this.db;
    this.getStmt = db.prepare<[string], Buffer>('SELECT value FROM kv WHERE key = ?').pluck();
    this.rangeStmt = db
      .prepare<[string, string], string>('SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key')
      .pluck();
    this.fromStmt = db.prepare<[string], string>('SELECT key FROM kv WHERE key >= ? ORDER BY key').pluck();
    // An in-memory store is one connection's: it commits on this thread (there is no fsync to wait for).
    if (inMemory) {
      this.committer = inlineCommitter(db, (reply) => this.settle(reply));
    } else if (client) {
      db.pragma('query_only = true');
      this.committer = portCommitter(client, (reply) => this.settle(reply));
    } else {
      // Only the commit thread writes the file: a stray write here would bypass group commit.
      db.pragma('query_only = true');
      this.committer = threadCommitter(
        file,
        (reply) => this.settle(reply),
        (err) => this.failCommitter(err),
      );
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    this.counters.reads++;
    return this.getStmt.get(checkKey(key));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.enqueue([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<void> {
    await this.enqueue([{ op: 'delete', key }]);
  }

  async transaction(ops: StorageOp[]): Promise<Committed> {
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
      await this.db.backup(path.join(dir, 'view.db'), { progress: backupPace() });
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

  /** Flushes pending writes, waits for them to be committed, then closes. Closing twice is a no-op. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    await this.committer.close();
    this.db.close();
    this.lock?.close();
  }

  stats(): SqliteStats {
    return { ...this.counters };
  }

  /**
   * Tells `listener` how long each commit that carried this storage's writes took. With several server threads,
   * each thread's storage hears of the commits that carried its own writes.
   */
  onCommit(listener: CommitListener): void {
    this.commitTimes.listen(listener);
  }

  /** For diagnostics and tests: the connection's current value of a pragma. */
  pragma(name: 'journal_mode' | 'synchronous' | 'busy_timeout'): unknown {
    this.assertOpen();
    return this.db.pragma(name, { simple: true });
  }

  private enqueue(ops: StorageOp[]): Promise<Committed> {
    this.assertOpen();
    if (this.committerError) return Promise.reject(this.committerError);
    // Encoded (values copied) now: the caller may reuse its buffer before the flush runs.
    this.encoder.add(ops);
    return new Promise<Committed>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const encoded = this.encoder.take();
    if (this.committerError) {
      for (const w of batch) w.reject(this.committerError);
      return;
    }
    const seq = this.nextSeq++;
    this.inFlight.set(seq, batch);
    this.committer.submit({ seq, ...encoded });
  }

  private settle(reply: CommitReply): void {
    const batch = this.inFlight.get(reply.seq);
    if (!batch) return;
    this.inFlight.delete(reply.seq);
    if (!reply.committed) {
      for (const w of batch) w.reject(new Error(reply.error));
      return;
    }
    this.counters.commits = reply.commits;
    this.commitTimes.observe(reply.seconds);
    batch.forEach((w, i) => {
      const outcome = reply.failures[i];
      if (typeof outcome === 'string') {
        w.reject(new Error(outcome));
      } else if (outcome !== undefined && 'conflict' in outcome) {
        w.reject(new StorageConflictError(outcome.conflict));
      } else {
        this.counters.writes++;
        w.resolve(outcome?.appended);
      }
    });
  }

  /** The commit thread is gone: no write in flight or to come can be acknowledged. */
  private failCommitter(err: Error): void {
    this.committerError ??= err;
    for (const batch of this.inFlight.values()) for (const w of batch) w.reject(this.committerError);
    this.inFlight.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('sqlite storage is closed');
  }
}

/**
 * How many pages each step of an online backup copies. SQLite starts a backup over when another connection (the
 * commit thread) commits between two steps: at 100 pages a step, under steady writes, a store of a few megabytes was
 * never copied. A step is synchronous on the event loop, so steps start small; each time the backup was started
 * over they copy four times as many pages, until one step copies what is left.
 */
function backupPace(): (progress: { remainingPages: number }) => number {
  let pages = 100;
  let remaining = Infinity;
  return (progress) => {
    if (progress.remainingPages >= remaining) pages = Math.min(pages * 4, 0x7fffffff);
    remaining = progress.remainingPages;
    return pages;
  };
}

/**
 * Takes an exclusive lock that lasts as long as this storage is open (the operating system drops it when the
 * process dies, even by SIGKILL), so a second server on the same file fails to start instead of sharing it
 * unsafely. The data file itself cannot be locked so: the commit thread and the readers share it.
 */
export function holdFile(file: string): Database.Database {
  const lock = new Database(`${file}-lock`, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE; COMMIT');
    return lock;
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(`the storage file ${file} is in use by another Cofre server (its lock ${file}-lock is held)`);
    }
    throw err;
  }
}

/** Commits through a commit thread other server threads share; the same port brings their changes. */
function portCommitter(client: CommitClient, settle: (reply: CommitReply) => void): Committer {
  const inFlight = new Set<number>();
  let drained: (() => void) | undefined;
  const handle = (message: CommitReply | ChangesMessage): void => {
    if ('changed' in message) return client.onChanges(message.changed);
    inFlight.delete(message.seq);
    settle(message);
    if (inFlight.size === 0) drained?.();
  };
  client.port.on('message', handle);
  return {
    drain: () => {
      for (let next = receiveMessageOnPort(client.port); next; next = receiveMessageOnPort(client.port)) {
        handle(next.message as CommitReply | ChangesMessage);
      }
    },
    submit: (request) => {
      inFlight.add(request.seq);
      client.port.postMessage(request, [request.bytes.buffer]);
    },
    close: async () => {
      if (inFlight.size > 0) await new Promise<void>((resolve) => (drained = resolve));
      client.port.close();
    },
  };
}

/** Commits on the calling thread, at once (for an in-memory store). */
function inlineCommitter(db: Database.Database, settle: (reply: CommitReply) => void): Committer {
  const commit = groupCommitter(db);
  let commits = 0;
  return {
    submit(request) {
      const { seq } = request;
      const started = performance.now();
      try {
        const failures = commit(decodeCalls(request));
        settle({ seq, committed: true, failures, commits: ++commits, seconds: (performance.now() - started) / 1000 });
      } catch (err) {
        settle({ seq, committed: false, error: errorMessage(err) });
      }
    },
    close: async () => undefined,
  };
}

/** Commits on a thread of its own (sqlite-commit-thread.ts), so the fsync never blocks this event loop. */
function threadCommitter(file: string, settle: (reply: CommitReply) => void, fail: (err: Error) => void): Committer {
  const worker = startThread(import.meta.url, 'sqlite-commit-thread', {
    workerData: { file } satisfies CommitThreadData,
  });
  worker.on('message', settle);
  worker.on('error', fail);
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', (code) => {
      fail(new Error(`the SQLite commit thread exited (code ${code})`));
      resolve();
    }),
  );
  return {
    submit: (request) => worker.postMessage(request, [request.bytes.buffer]),
    close: async () => {
      worker.postMessage('close');
      await exited;
    },
  };
}

function checkKey(key: string): string {
  if (typeof key !== 'string') throw new TypeError('storage key must be a string');
  return key;
}

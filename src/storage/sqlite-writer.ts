/**
 * The write side of the SQLite adapter: the schema and pragmas of the file, and group commit. One SQLite
 * transaction applies many callers' operations, each caller in a savepoint of its own, so a failing caller is
 * rolled back and rejected alone while the others share the commit (and its fsync).
 */
import Database from 'better-sqlite3';
import {
  checkHolds,
  logEntryKey,
  logKeyRange,
  logPosition,
  StorageConflictError,
  type StorageOp,
} from '../core/storage.js';

/** Opens (and creates) the store's file with the pragmas every connection to it uses. */
export function openStoreFile(file: string): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    // WAL's default (NORMAL) may lose the last commits on power loss; an acknowledged write must not be lost.
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Per caller: undefined when its operations were applied (with the keys its append ops were given, if any), else
 * why it was rejected alone: a check that did not hold (the key), or the message of the error.
 */
export type CallOutcomes = (undefined | { appended: string[] } | string | { conflict: string })[];

/**
 * Returns a function that commits groups of callers' operations in one transaction. It throws when the
 * transaction as a whole failed (then nobody's operations were applied).
 */
export function groupCommitter(db: Database.Database): (calls: StorageOp[][]) => CallOutcomes {
  const put = db.prepare(
    'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  );
  const del = db.prepare('DELETE FROM kv WHERE key = ?');
  const get = db.prepare<[string], Buffer>('SELECT value FROM kv WHERE key = ?').pluck();
  const lastOfLog = db
    .prepare<[string, string], string>('SELECT key FROM kv WHERE key >= ? AND key <= ? ORDER BY key DESC LIMIT 1')
    .pluck();
  // Only this thread writes the file and commits one batch at a time, so the next position is the last one stored
  // plus one; a caller rolled back gives its positions back to the next.
  const append = (log: string, value: Uint8Array): string => {
    const last = lastOfLog.get(...logKeyRange(log));
    const position = last === undefined ? 0 : logPosition(log, last);
    if (position === undefined) throw new Error(`the log ${log} holds ${last}, which is not one of its positions`);
    const key = logEntryKey(log, position + 1);
    put.run(key, value);
    return key;
  };
  // Nested better-sqlite3 transactions are savepoints: this one isolates a single caller inside the batch. Its
  // checks see what the callers before it in the batch wrote, as if each had committed alone.
  const applyCall = db.transaction((ops: StorageOp[]): string[] => {
    const appended: string[] = [];
    for (const op of ops) {
      if (op.op === 'check') {
        if (!checkHolds(op, get.get(op.key))) throw new StorageConflictError(op.key);
      } else if (op.op === 'put') put.run(op.key, op.value);
      else if (op.op === 'append') appended.push(append(op.key, op.value));
      else del.run(op.key);
    }
    return appended;
  });
  return db.transaction((calls: StorageOp[][]): CallOutcomes =>
    calls.map((ops) => {
      try {
        const appended = applyCall(ops);
        return appended.length > 0 ? { appended } : undefined;
      } catch (err) {
        if (err instanceof StorageConflictError) return { conflict: err.key };
        // Some errors (SQLITE_FULL, IOERR, ...) make SQLite roll back the whole transaction; going on would
        // autocommit the rest one by one while earlier callers' writes are already gone, so fail the batch.
        if (!db.inTransaction) throw err;
        return errorMessage(err);
      }
    }),
  );
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

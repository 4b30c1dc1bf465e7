/**
 * The SQLite commit thread: the only connection that writes the file. Server threads hand it batches of writes
 * (src/storage/sqlite.ts) and go on serving requests while the commit's fsync runs here.
 *
 * Group commit: every batch waiting when the thread turns to work, from every client, is drained at once
 * (receiveMessageOnPort) and committed in one SQLite transaction, so the slower the disk, the more writes share
 * one fsync.
 *
 * With several server threads on one store (src/workers/), a commit also tells every other client which keys it
 * changed, and only then bumps the shared change counter and answers the writers: a thread that sees the counter
 * move finds the changes already waiting on its port (SqliteThreadStorage.catchUp), so no thread can serve a value
 * older than a write another thread has acknowledged.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { StorageOp } from '../core/storage.js';
import { decodeCalls, type EncodedCalls } from './commit-batch.js';
import { errorMessage, groupCommitter, openStoreFile, type CallOutcomes } from './sqlite-writer.js';

/** One flush of a client's event loop: the operations of each caller, in order (commit-batch.ts). */
export interface CommitRequest extends EncodedCalls {
  seq: number;
}

/**
 * The outcome of one CommitRequest. `commits` counts the thread's transactions so far; `seconds` is how long the
 * transaction that carried it took (SQLite's work, the fsync, and a checkpoint when one ran): the store's own time,
 * without the wait for the commit before it.
 */
export type CommitReply =
  | { seq: number; committed: true; failures: CallOutcomes; commits: number; seconds: number }
  | { seq: number; committed: false; error: string };

/** What a client hears of the keys other clients committed. */
export interface ChangesMessage {
  changed: string[];
}

export interface CommitThreadData {
  file: string;
  /** Several clients (server threads); without, the parent is the one client. */
  clients?: MessagePort[];
  /** Int32 slot 0: bumped once per commit, after the other clients were told of its keys. */
  changeCounter?: SharedArrayBuffer;
}

const parent = parentPort;
if (!parent) throw new Error('sqlite-commit-thread runs as a worker thread');

const data = workerData as CommitThreadData;
const db = openStoreFile(data.file);
const commit = groupCommitter(db);
const clients: MessagePort[] = data.clients ?? [parent];
const counter = data.changeCounter ? new Int32Array(data.changeCounter) : undefined;
let commits = 0;
let closing = false;

interface Pending {
  client: number;
  seq: number;
  calls: StorageOp[][];
}

clients.forEach((port, client) => port.on('message', (first: CommitRequest | 'close') => work({ client, first })));
if (data.clients) parent.on('message', (msg: 'close') => work({ client: -1, first: msg }));

function work({ client, first }: { client: number; first: CommitRequest | 'close' }): void {
  const pending: Pending[] = [];
  take(client, first, pending);
  clients.forEach((port, i) => {
    for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port)) take(i, next.message, pending);
  });
  if (pending.length > 0) commitAll(pending);
  if (closing) {
    db.close();
    for (const port of clients) port.close();
    parent!.close();
  }
}

function take(client: number, message: CommitRequest | 'close', into: Pending[]): void {
  if (message === 'close') {
    closing = true;
    return;
  }
  let calls: StorageOp[][];
  try {
    calls = decodeCalls(message);
  } catch (err) {
    clients[client]!.postMessage({ seq: message.seq, committed: false, error: errorMessage(err) });
    return;
  }
  into.push({ client, seq: message.seq, calls });
}

function commitAll(pending: Pending[]): void {
  let outcomes: CallOutcomes;
  const started = performance.now();
  try {
    outcomes = commit(pending.flatMap((p) => p.calls));
  } catch (err) {
    for (const { client, seq } of pending) {
      clients[client]!.postMessage({ seq, committed: false, error: errorMessage(err) });
    }
    return;
  }
  const seconds = (performance.now() - started) / 1000;
  commits++;
  let at = 0;
  const settled = pending.map(({ client, seq, calls }) => {
    const failures = outcomes.slice(at, at + calls.length);
    at += calls.length;
    return { client, seq, calls, failures };
  });
  if (counter) announce(settled);
  for (const { client, seq, failures } of settled) {
    clients[client]!.postMessage({ seq, committed: true, failures, commits, seconds } satisfies CommitReply);
  }
}

/** Tells each client the keys the others changed, then moves the counter (the order catchUp relies on). */
function announce(settled: (Pending & { failures: CallOutcomes })[]): void {
  const changedBy = settled.map(({ calls, failures }) =>
    calls.flatMap((ops, i) => {
      const outcome = failures[i];
      if (typeof outcome === 'string' || (outcome !== undefined && 'conflict' in outcome)) return [];
      const written = ops.flatMap((op) => (op.op === 'put' || op.op === 'delete' ? [op.key] : []));
      return outcome ? [...written, ...outcome.appended] : written;
    }),
  );
  clients.forEach((port, i) => {
    const changed = settled.flatMap((p, n) => (p.client === i ? [] : changedBy[n]!));
    if (changed.length > 0) port.postMessage({ changed } satisfies ChangesMessage);
  });
  Atomics.add(counter!, 0, 1);
}

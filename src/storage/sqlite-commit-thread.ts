/**
 * The SQLite commit thread: the only connection that writes the file. The server's event loop hands it batches of
 * writes (src/storage/sqlite.ts) and goes on serving requests while the commit's fsync runs here.
 *
 * Group commit: every batch waiting when the thread turns to work is drained at once (receiveMessageOnPort) and
 * committed in one SQLite transaction, so the slower the disk, the more writes share one fsync.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { StorageOp } from '../core/storage.js';
import { errorMessage, groupCommitter, openStoreFile, type CallOutcomes } from './sqlite-writer.js';

/** One flush of the server's event loop: the operations of each caller, in order. */
export interface CommitRequest {
  seq: number;
  calls: StorageOp[][];
}

/** The outcome of one CommitRequest. `commits` counts the thread's transactions so far. */
export type CommitReply =
  | { seq: number; committed: true; failures: CallOutcomes; commits: number }
  | { seq: number; committed: false; error: string };

export interface CommitThreadData {
  file: string;
}

const port = parentPort;
if (!port) throw new Error('sqlite-commit-thread runs as a worker thread');

const db = openStoreFile((workerData as CommitThreadData).file);
const commit = groupCommitter(db);
let commits = 0;

port.on('message', (first: CommitRequest | 'close') => {
  const requests: CommitRequest[] = [];
  let closing = first === 'close';
  if (first !== 'close') requests.push(first);
  for (let next = closing ? undefined : receiveMessageOnPort(port); next; next = receiveMessageOnPort(port)) {
    const request = next.message as CommitRequest | 'close';
    if (request === 'close') {
      closing = true;
      break;
    }
    requests.push(request);
  }
  if (requests.length > 0) commitAll(requests);
  if (closing) {
    db.close();
    port.close();
  }
});

function commitAll(requests: CommitRequest[]): void {
  let outcomes: CallOutcomes;
  try {
    outcomes = commit(requests.flatMap((r) => r.calls));
  } catch (err) {
    for (const { seq } of requests) port!.postMessage({ seq, committed: false, error: errorMessage(err) });
    return;
  }
  commits++;
  let at = 0;
  for (const { seq, calls } of requests) {
    const failures = outcomes.slice(at, at + calls.length);
    at += calls.length;
    port!.postMessage({ seq, committed: true, failures, commits } satisfies CommitReply);
  }
}

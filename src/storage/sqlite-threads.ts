/**
 * The store as one server thread of several sees it (src/workers/): an SQLite file that every thread reads through
 * its own connection and that one commit thread writes. To the core it is a store shared by several nodes, like
 * PostgreSQL, with two differences that make it stricter: the other threads' changes are applied before each
 * request (catchUp, one atomic read when nothing changed), and the leader is always the first thread.
 */
import { type MessagePort } from 'node:worker_threads';
import type { ClusterNode, SharedStorage } from '../core/storage.js';
import { SqliteStorage } from './sqlite.js';

export interface ThreadStoreOptions {
  file: string;
  /** This thread's port to the shared commit thread. */
  port: MessagePort;
  /** Int32 slot 0: the commit thread's change counter. */
  changeCounter: SharedArrayBuffer;
  /** This thread's index among `threads`; thread 0 leads. */
  index: number;
  threads: number;
}

export class SqliteThreadStorage extends SqliteStorage implements SharedStorage {
  readonly nodeId: string;
  /** The threads of one process, whose key locks span them all. */
  readonly otherProcesses = false;
  private readonly opts: ThreadStoreOptions;
  private readonly counter: Int32Array;
  private seen: number;
  private readonly relay: { listener?: (keys: string[] | undefined) => void };
  private apiAddr: string;
  private leading: boolean;

  constructor(opts: ThreadStoreOptions) {
    // Changes may arrive as soon as the port is open: they go to whoever watches by then.
    const relay: { listener?: (keys: string[] | undefined) => void } = {};
    super(opts.file, { port: opts.port, onChanges: (keys) => relay.listener?.(keys) });
    this.relay = relay;
    this.opts = opts;
    this.apiAddr = '';
    this.leading = false;
    this.nodeId = `thread-${opts.index}`;
    this.counter = new Int32Array(opts.changeCounter);
    this.seen = Atomics.load(this.counter, 0);
  }

  async watchChanges(listener: (keys: string[] | undefined) => void): Promise<void> {
    this.relay.listener = listener;
  }

  catchUp(): void {
    const now = Atomics.load(this.counter, 0);
    if (now === this.seen) return;
    // Read before draining: every commit counted up to `now` posted its changes before it was counted.
    this.seen = now;
    this.committer.drain?.();
  }

  async campaign(apiAddr: string, events: { onElected(): void; onLost(): void }): Promise<void> {
    this.apiAddr = apiAddr;
    if (this.opts.index !== 0 || this.leading) return;
    this.leading = true;
    events.onElected();
  }

  async resign(): Promise<void> {
    this.leading = false;
  }

  async nodes(): Promise<ClusterNode[]> {
    return Array.from({ length: this.opts.threads }, (_, i) => ({
      nodeId: `thread-${i}`,
      apiAddr: this.apiAddr,
      lastSeen: new Date(),
      leader: i === 0,
    }));
  }
}

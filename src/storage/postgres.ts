/**
 * PostgreSQL adapter of the storage port, for many Cofre nodes on one database: each node serves requests from a
 * connection pool, hears the keys other nodes commit (LISTEN/NOTIFY, postgres-changes.ts), and one node at a time
 * leads (an advisory lock, postgres-leader.ts). The table holds only what the barrier wrote: ciphertext.
 *
 * A write resolves once its statement committed (postgres-sql.ts). Durability is the server's synchronous_commit,
 * left as configured (on by default) so that an operator's remote_apply for a synchronous standby still holds.
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import {
  StorageConflictError,
  type ClusterNode,
  type SharedStorage,
  type Storage,
  type StorageOp,
  type Committed,
} from '../core/storage.js';
import { ChangeFeed, changePayloads, type ChangeListener } from './postgres-changes.js';
import { boolArray, intArray, textArray } from './postgres-arrays.js';
import { ReadBatcher } from './postgres-reads.js';
import { parseConnectionUrl, queryFailed, withClient, type Connection } from './postgres-connection.js';
import { Campaign, forgetNode, listNodes, type LeaderEvents } from './postgres-leader.js';
import { checkTableName, ensureSchema, type SchemaNames } from './postgres-schema.js';
import { statements } from './postgres-sql.js';
import { prefixEnd } from './key-range.js';
import { CommitTimes, type CommitListener } from './commit-times.js';

export interface PostgresOptions {
  /** postgres://USER:PASSWORD@HOST:PORT/DATABASE, with libpq-style parameters (sslmode, ...). */
  connectionUrl: string;
  /** Default "cofre_store"; also names the side tables ("_nodes", "_schema"), NOTIFY channel and lock. */
  table?: string;
  /** Pool size; default 16. */
  maxConnections?: number;
  /** Default: this host's name and a random suffix, so that a restarted process is a new node. */
  nodeId?: string;
}

export interface PostgresStats {
  /** Committed statements; one per write, PostgreSQL groups their WAL flushes itself. */
  commits: number;
  /** put/delete/transaction calls that committed. */
  writes: number;
  /** get() calls answered. */
  reads: number;
  /** Queries that answered them: the gets of one event-loop turn share one (postgres-reads.ts). */
  readQueries: number;
  /** Batches sent again because PostgreSQL rolled them back as a deadlock's victim. */
  deadlockRetries: number;
}

/**
 * How long a pooled connection may sit idle before it is closed; pg's default is 10 s. Each connection's backend
 * holds the statements prepared on it and the batch function compiled, and the pool grows to its size under load:
 * closed after every lull of 10 s, the first requests after it waited for new connections, new backends and all of
 * that again (bench/README.md, "The change log with two writers; this session's levers"). A connection that the
 * server or a proxy closes meanwhile is dropped from the pool once that is noticed, so an idle timeout shorter than
 * this there (PostgreSQL's idle_session_timeout, a proxy's) only brings the cost back.
 */
const IDLE_CONNECTION_MS = 5 * 60_000;

export async function openPostgresStorage(opts: PostgresOptions): Promise<PostgresStorage> {
  const table = opts.table ?? 'cofre_store';
  checkTableName(table);
  const nodeId = opts.nodeId ?? `${os.hostname()}-${randomBytes(3).toString('hex')}`;
  if (nodeId.length === 0 || nodeId.length > 200)
    throw new Error('postgres storage: nodeId must be 1 to 200 characters');
  const max = opts.maxConnections ?? 16;
  if (!Number.isInteger(max) || max < 1) throw new Error('postgres storage: maxConnections must be a positive integer');
  const conn = parseConnectionUrl(opts.connectionUrl);
  const pool = new pg.Pool({
    ...conn.config,
    max,
    idleTimeoutMillis: IDLE_CONNECTION_MS,
    // Idle connections kept that long must not keep alive a process that has nothing else to do and never closed
    // its store (a script, a test): it would linger for those minutes.
    allowExitOnIdle: true,
    application_name: `cofre ${nodeId}`.slice(0, 63),
  });
  // An idle pooled connection that dies (server restart) is reported here; unheard, it would end the process.
  pool.on('error', () => {});
  // list()'s recursive query looks costly to the planner (it cannot know a folder walk stops early), enough to
  // trigger JIT compilation, which then takes a hundred times longer than the query itself.
  // Every statement finds its rows by key or key range, but the plan that PostgreSQL caches for a prepared
  // "key = ANY ($1)" (the batched reads, the batch function's deletes) turned into a sequential scan once the table
  // had grown: under two nodes' writes, 600 scans in 15 s read 10 million row versions, and PostgreSQL's CPU per
  // write doubled. With sequential scans priced out, every lookup stays an index scan whatever the table's size.
  pool.on('connect', (client) => void client.query('SET jit = off; SET enable_seqscan = off').catch(() => {}));
  try {
    const names = await withClient(pool, conn, (c) => ensureSchema(c, table));
    return new PostgresStorage(pool, conn, names, nodeId);
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
}

/**
 * Group-committed batches of one node on their way to PostgreSQL at once. One: the next batch collects every write
 * that arrives while the current one commits (as the SQLite commit thread drains every waiting batch), so that a
 * node's commits do not queue behind each other in PostgreSQL, which serialises committing transactions that
 * NOTIFY. It also makes this node's commits land in the order they were queued.
 */
const BATCHES_IN_FLIGHT = 1;
/** How often a batch chosen as a deadlock's victim is sent again before its writers are told it failed. */
const DEADLOCK_RETRIES = 5;

/** A statement prepared by name on each connection that runs it. */
interface Statement {
  name: string;
  text: string;
}

/** Named after its text, so that two stores on different tables in one process never share a name. */
function prepare(text: string): Statement {
  return { name: `cofre_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
}

type Query = <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

export class PostgresStorage implements SharedStorage {
  readonly otherProcesses = true;
  private readonly changes: ChangeFeed;
  private leadership: Campaign | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly counters: PostgresStats = { commits: 0, writes: 0, reads: 0, readQueries: 0, deadlockRetries: 0 };
  private readonly commitTimes = new CommitTimes();
  private readonly sql: ReturnType<typeof statements>;
  /**
   * The statements of every read and write, prepared once per pooled connection: PostgreSQL then skips parsing
   * and planning them on each call, a good part of its CPU per write. (Behind PgBouncer in transaction mode this
   * needs PgBouncer 1.21 or later with max_prepared_statements set, as any client's prepared statements do.)
   */
  private readonly prepared: { get: Statement; getMany: Statement; apply: Statement };
  private readonly reads: ReadBatcher;
  private queue: {
    ops: ReturnType<typeof validate>;
    resolve: (committed: Committed) => void;
    reject: (err: unknown) => void;
  }[] = [];
  /** Batches sent and not yet settled (at most BATCHES_IN_FLIGHT); each settles after starting the next. */
  private readonly batches = new Set<Promise<void>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly conn: Connection,
    private readonly names: SchemaNames,
    readonly nodeId: string,
  ) {
    this.changes = new ChangeFeed(conn, names.channel, nodeId);
    this.sql = statements(names.entries, names.apply);
    this.prepared = {
      get: prepare(this.sql.get),
      getMany: prepare(this.sql.getMany),
      apply: prepare(this.sql.apply),
    };
    this.reads = new ReadBatcher(async (keys) => {
      const found = new Map<string, Buffer>();
      if (keys.length === 1) {
        const { rows } = await this.query<{ value: Buffer }>(this.prepared.get, keys);
        if (rows[0]) found.set(keys[0]!, rows[0].value);
      } else {
        const { rows } = await this.query<{ key: string; value: Buffer }>(this.prepared.getMany, [textArray(keys)]);
        for (const row of rows) found.set(row.key, row.value);
      }
      this.counters.reads += keys.length;
      this.counters.readQueries++;
      return found;
    });
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    this.assertOpen();
    return this.reads.get(key);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.enqueue([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<void> {
    await this.enqueue([{ op: 'delete', key }]);
  }

  transaction(ops: StorageOp[]): Promise<Committed> {
    return this.enqueue(ops);
  }

  /**
   * Group commit: writes made while this node's previous batch commits (or, when none does, in the same
   * event-loop turn) go out together as one statement: one commit, one round of NOTIFY. PostgreSQL serialises
   * committing transactions that NOTIFY, so one commit for many writers is what lets writes scale with
   * concurrency. Each caller's ops stay atomic (they are in one statement). A caller whose check fails is rejected
   * alone; otherwise callers in one batch succeed or fail together, which only a lost connection can cause.
   */
  private enqueue(ops: StorageOp[]): Promise<Committed> {
    let checked: ReturnType<typeof validate>;
    try {
      checked = validate(ops);
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    if (checked.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ ops: checked, resolve, reject });
      if (this.queue.length === 1 && this.batches.size < BATCHES_IN_FLIGHT) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.queue.length === 0 || this.batches.size >= BATCHES_IN_FLIGHT) return;
    const batch = this.takeBatch();
    const ops = new PackedOps();
    const checks = new PackedOps();
    const logs = new PackedOps();
    batch.forEach((w, caller) => {
      for (const op of w.ops) {
        if (op.op === 'check') checks.add(op.key, op.bytes, caller, op.exact);
        else if (op.op === 'append') logs.add(op.key, op.value, caller);
        else ops.add(op.key, op.op === 'delete' ? null : op.value, caller);
      }
    });
    // Appended entries are announced by the batch function, which alone knows their keys.
    const groups = batch.map((w) => [
      ...new Set(w.ops.filter((op) => op.op === 'put' || op.op === 'delete').map((op) => op.key)),
    ]);
    let refused = false;
    const sent: Promise<void> = this.write(ops, checks, logs, groups, batch.length)
      .then(
        ({ failed, found, logged }) => {
          refused = failed.size > 0;
          let appended = 0;
          batch.forEach((w, caller) => {
            const appends = w.ops.filter((op) => op.op === 'append').length;
            const keys = logged.slice(appended, (appended += appends));
            if (!failed.has(caller)) return w.resolve(appends > 0 ? (keys as string[]) : undefined);
            const checked = w.ops.filter((op) => op.op === 'check').map((op) => op.key);
            const own = new Map(checked.filter((key) => found.has(key)).map((key) => [key, found.get(key)!]));
            w.reject(new StorageConflictError(checked[0] ?? '', own));
          });
        },
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.batches.delete(sent);
        // A refused KV write makes its change again on what it was told, without reading: it is queued once its
        // promise's reactions have run, before the next turn. The next batch waits for it, instead of leaving
        // without it and making it wait for its whole round trip.
        if (refused) setImmediate(() => this.flush());
        else this.flush();
      });
    this.batches.add(sent);
  }

  /**
   * The callers of the next batch, in order. A caller whose check names a key that an earlier caller of the batch
   * writes waits for the next one: the batch function checks against the store as it was before the batch.
   */
  private takeBatch(): typeof this.queue {
    const written = new Set<string>();
    let n = 0;
    for (; n < this.queue.length; n++) {
      const { ops } = this.queue[n]!;
      if (n > 0 && ops.some((op) => op.op === 'check' && written.has(op.key))) break;
      for (const op of ops) if (op.op !== 'check') written.add(op.key);
    }
    return this.queue.splice(0, n);
  }

  async list(prefix: string): Promise<string[]> {
    return this.listWith((text, values) => this.query(text, values), prefix);
  }

  /**
   * The store as of one instant, for snapshots taken while writes go on: one REPEATABLE READ, READ ONLY
   * transaction on a pooled connection, until release.
   */
  async openReadView(): Promise<Pick<Storage, 'get' | 'list'> & { release(): Promise<void> }> {
    this.assertOpen();
    const client = await this.pool.connect();
    const query: Query = (text, values) => client.query(text, values);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    } catch (err) {
      client.release(err as Error);
      return this.fail(err);
    }
    return {
      get: async (key) => {
        checkKey(key);
        return (await query<{ value: Buffer }>(this.sql.get, [key])).rows[0]?.value;
      },
      list: (prefix) => this.listWith(query, prefix),
      release: async () => {
        const ended = await client.query('COMMIT').then(
          () => undefined,
          (err: Error) => err,
        );
        client.release(ended);
      },
    };
  }

  private async listWith(query: Query, prefix: string): Promise<string[]> {
    checkKey(prefix);
    const end = prefixEnd(prefix);
    type Segment = { leaves: string[]; folder: string | null };
    const { rows } =
      end === undefined
        ? await query<Segment>(this.sql.listOpen, [prefix])
        : await query<Segment>(this.sql.listRange, [prefix, end]);
    const out: string[] = [];
    for (const { leaves, folder } of rows) {
      for (const key of leaves) if (key.length > prefix.length) out.push(key.slice(prefix.length));
      if (folder !== null) {
        const rest = folder.slice(prefix.length);
        out.push(rest.slice(0, rest.indexOf('/') + 1));
      }
    }
    return out;
  }

  async watchChanges(listener: ChangeListener): Promise<void> {
    this.assertOpen();
    return this.changes.add(listener);
  }

  deaf(): Promise<void> | undefined {
    return this.changes.deaf();
  }

  async campaign(apiAddr: string, events: LeaderEvents): Promise<void> {
    this.assertOpen();
    if (this.leadership) throw new Error('postgres storage: this node already campaigns');
    const { conn, names, nodeId } = this;
    const leadership = new Campaign({
      conn,
      nodesTable: names.nodes,
      lockKey: names.leaderLock,
      nodeId,
      apiAddr,
      events,
    });
    this.leadership = leadership;
    try {
      await leadership.start();
    } catch (err) {
      this.leadership = undefined;
      throw err;
    }
  }

  async resign(): Promise<void> {
    const leadership = this.leadership;
    this.leadership = undefined;
    await leadership?.stop();
  }

  async nodes(): Promise<ClusterNode[]> {
    this.assertOpen();
    return this.track(listNodes(this.pool, this.names.nodes).catch((err: unknown) => this.fail(err)));
  }

  /** Steps down and stops listening, waits for calls under way, removes this node from the registry. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  stats(): PostgresStats {
    return { ...this.counters };
  }

  /**
   * Tells `listener` how long each batch's statement took, from sending it to its answer (the commit and its WAL
   * flush, the wait for the store's write lock, and a deadlock's retries included).
   */
  onCommit(listener: CommitListener): void {
    this.commitTimes.listen(listener);
  }

  private async shutdown(): Promise<void> {
    // Writes accepted before close() go out now, batch after batch.
    while (this.queue.length > 0 || this.batches.size > 0) {
      this.flush();
      await Promise.allSettled([...this.batches]);
    }
    await this.leadership?.stop();
    await this.changes.stop();
    await Promise.allSettled(this.inFlight);
    if (this.leadership) await forgetNode(this.pool, this.names.nodes, this.nodeId).catch(() => {});
    await this.pool.end();
  }

  /**
   * Not refused once closing: close() sends the writes accepted before it. Resolves with the callers whose checks
   * failed (nothing of theirs was applied), and what the keys they checked held once the batch was written.
   */
  private async write(
    ops: PackedOps,
    checks: PackedOps,
    logs: PackedOps,
    groups: string[][],
    callers: number,
  ): Promise<{ failed: Set<number>; found: Map<string, Buffer | null>; logged: (string | null)[] }> {
    // In the order of the statement's placeholders (postgres-sql.ts): the three blobs last.
    const args = [
      this.names.writeLock,
      ...ops.lists(),
      ...checks.lists(),
      boolArray(checks.exact),
      this.names.channel,
      textArray(changePayloads(this.nodeId, groups)),
      ...logs.lists(),
      this.nodeId,
      checks.blob(),
      logs.blob(),
      ops.blob(),
    ];
    type Outcome = {
      lost: number[];
      current_keys: string[] | null;
      current_values: (Buffer | null)[] | null;
      logged_keys: (string | null)[] | null;
    };
    let outcome: Outcome | undefined;
    const started = performance.now();
    for (let tries = 1; ; tries++) {
      try {
        const { rows } = await this.track(
          withClient(this.pool, this.conn, (c) => c.query<Outcome>({ ...this.prepared.apply, values: args }), {
            once: true,
          }),
        );
        outcome = rows[0];
        break;
      } catch (err) {
        // Two nodes' batches may still lock a row each that the other needs (a delete and an upsert run in either
        // order). PostgreSQL then rolls one statement back whole, and sending it again is safe.
        if (tries >= DEADLOCK_RETRIES || (err as { code?: unknown }).code !== '40P01') throw err;
        this.counters.deadlockRetries++;
      }
    }
    const failed = outcome?.lost ?? [];
    const found = new Map<string, Buffer | null>();
    outcome?.current_keys?.forEach((key, i) => found.set(key, outcome.current_values?.[i] ?? null));
    this.commitTimes.observe((performance.now() - started) / 1000);
    this.counters.commits++;
    this.counters.writes += callers - failed.length;
    return { failed: new Set(failed), found, logged: outcome?.logged_keys ?? [] };
  }

  private query<R extends pg.QueryResultRow>(
    statement: string | Statement,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    const config = typeof statement === 'string' ? { text: statement } : statement;
    return this.track(withClient(this.pool, this.conn, (c) => c.query<R>({ ...config, values })));
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const forget = () => void this.inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  private fail(err: unknown): never {
    throw queryFailed(this.conn, err);
  }

  private assertOpen(): void {
    if (this.closing) throw new Error('postgres storage is closed');
  }
}

/** Ops as the batch function takes them (postgres-schema.ts): keys, one binary blob of values, where each starts. */
class PackedOps {
  private readonly keys: string[] = [];
  private readonly values: Buffer[] = [];
  private readonly starts: number[] = [];
  private readonly lengths: number[] = [];
  private readonly callers: number[] = [];
  /** Checks only: whether each expects its value exactly, or only as the beginning of what is stored. */
  readonly exact: boolean[] = [];
  private size = 0;

  /** `value` null: a delete, or a check that expects no entry. */
  add(key: string, value: Buffer | null, caller: number, exact = true): void {
    this.keys.push(key);
    this.exact.push(exact);
    this.callers.push(caller);
    this.starts.push(this.size + 1);
    this.lengths.push(value === null ? -1 : value.length);
    if (value !== null) {
      this.values.push(value);
      this.size += value.length;
    }
  }

  /** Keys, starts, lengths and callers: the batch function's arrays, in its order, as array literals. */
  lists(): string[] {
    return [textArray(this.keys), intArray(this.starts), intArray(this.lengths), intArray(this.callers)];
  }

  blob(): Buffer {
    return Buffer.concat(this.values, this.size);
  }
}

type CheckedOp =
  | { op: 'delete'; key: string }
  | { op: 'put' | 'append'; key: string; value: Buffer }
  /** bytes null: no entry expected; exact false: a value that begins with bytes. */
  | { op: 'check'; key: string; bytes: Buffer | null; exact: boolean };

/** Checks and copies ops at once: the caller may reuse its buffers before the statement is sent. */
function validate(ops: StorageOp[]): CheckedOp[] {
  if (!Array.isArray(ops)) throw new TypeError('storage transaction takes an array of ops');
  return ops.map((op) => {
    checkKey(op.key);
    if (op.op === 'delete') return { op: 'delete', key: op.key };
    if (op.op === 'check') {
      if ('prefix' in op) return { op: 'check', key: op.key, bytes: copyValue(op.prefix), exact: false };
      return { op: 'check', key: op.key, bytes: op.value === null ? null : copyValue(op.value), exact: true };
    }
    if (op.op !== 'put' && op.op !== 'append') throw new TypeError('storage op must be put, delete, append or check');
    return { op: op.op, key: op.key, value: copyValue(op.value) };
  });
}

function copyValue(value: Uint8Array): Buffer {
  if (!(value instanceof Uint8Array)) throw new TypeError('storage value must be a Uint8Array');
  return Buffer.from(value);
}

function checkKey(key: string): void {
  if (typeof key !== 'string') throw new TypeError('storage key must be a string');
  // PostgreSQL's text type cannot hold NUL; failing here says why, instead of an encoding error from the server.
  if (key.includes('\0')) throw new TypeError('storage key must not contain NUL');
}

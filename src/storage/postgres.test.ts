import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { startPostgres, type TestDatabase } from '../../scripts/test-databases.js';
import { freePort } from '../../scripts/test-databases-process.js';
import { StorageConflictError, type Storage } from '../core/storage.js';
import { openPostgresStorage, type PostgresStorage } from './postgres.js';
import { SCHEMA_VERSION } from './postgres-schema.js';
import { statements } from './postgres-sql.js';
import { bytes, storageContract, text } from './test-harness.js';

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - start;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgresStorage', () => {
  let db: TestDatabase;
  let n = 0;
  const tables = new WeakMap<Storage, string>();
  const opened: PostgresStorage[] = [];

  const open = async (table = `t${n++}`, nodeId?: string): Promise<PostgresStorage> => {
    const s = await openPostgresStorage({ connectionUrl: db.url, table, maxConnections: 4, ...(nodeId && { nodeId }) });
    tables.set(s, table);
    opened.push(s);
    return s;
  };
  /** Holds row `key` of `table` in a transaction of another connection, until release() commits it. */
  const holdRow = async (table: string, key: string): Promise<{ release(): Promise<void> }> => {
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM ${table} WHERE key = $1 FOR UPDATE`, [key]);
    } catch (err) {
      await other.end();
      throw err;
    }
    let released: Promise<void> | undefined;
    return { release: () => (released ??= other.query('COMMIT').then(() => other.end())) };
  };
  /** Cuts a dedicated connection of a node from the server side, as a network failure or an admin would. */
  const terminate = async (role: 'listen' | 'leader', nodeId: string): Promise<number> => {
    const rows = await db.query(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
      [`cofre ${role} ${nodeId}`],
    );
    return rows.length;
  };

  before(async () => {
    db = await startPostgres();
  });
  after(async () => {
    for (const s of opened) await s.close().catch(() => {});
    await db?.stop();
  });

  storageContract({
    open: () => open(),
    reopen: async (s) => {
      await s.close();
      return open(tables.get(s) ?? assert.fail('not a store of this harness'));
    },
    openFailingOn: async (key, seed) => {
      const s = await open();
      for (const { key: k, value } of seed) await s.put(k, value);
      const table = tables.get(s);
      await db.query(
        `CREATE FUNCTION ${table}_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ` +
          `IF NEW.key = '${key}' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`,
      );
      await db.query(
        `CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_boom()`,
      );
      return s;
    },
  });

  it('creates its schema once when several nodes start at once, with byte-ordered keys', async () => {
    const nodes = await Promise.all([1, 2, 3].map((i) => open('racing', `racer${i}`)));
    await nodes[0]!.put('k', bytes('v'));
    assert.equal(text(await nodes[2]!.get('k')), 'v');
    assert.deepEqual(await db.query('SELECT id, version FROM racing_schema'), [{ id: 1, version: SCHEMA_VERSION }]);
    const columns = await db.query(
      `SELECT column_name, data_type, collation_name FROM information_schema.columns
       WHERE table_name = 'racing' ORDER BY ordinal_position`,
    );
    assert.deepEqual(columns, [
      { column_name: 'key', data_type: 'text', collation_name: 'C' },
      { column_name: 'value', data_type: 'bytea', collation_name: null },
    ]);
    for (const s of nodes) await s.close();
    // Opening again migrates nothing and keeps the data.
    const again = await open('racing');
    assert.equal(text(await again.get('k')), 'v');
    await again.close();
  });

  /** A store holding k = v, taken back to schema `version` (its later functions dropped), opened again. */
  const openedFrom = async (table: string, version: number, later: string[]): Promise<PostgresStorage> => {
    const s = await open(table);
    await s.put('k', bytes('v'));
    await s.close();
    for (const name of later) await db.query(`DROP FUNCTION ${table}_${name}`);
    await db.query(`UPDATE ${table}_schema SET version = ${version}`);
    return open(table);
  };

  it('migrates a store of schema version 1: its batch functions are created, and its data kept', async () => {
    const again = await openedFrom('older', 1, ['apply', 'apply2', 'apply3']);
    assert.equal(text(await again.get('k')), 'v');
    await again.transaction([
      { op: 'check', key: 'k', value: bytes('v') },
      { op: 'put', key: 'k', value: bytes('w') },
    ]);
    assert.equal(text(await again.get('k')), 'w');
    assert.deepEqual(await db.query('SELECT version FROM older_schema'), [{ version: SCHEMA_VERSION }]);
    const functions = await db.query("SELECT proname FROM pg_proc WHERE proname LIKE 'older_apply%' ORDER BY proname");
    assert.deepEqual(functions, [{ proname: 'older_apply' }, { proname: 'older_apply2' }, { proname: 'older_apply3' }]);
    await again.close();
  });

  it('migrates a store of schema version 2 and keeps the batch function that nodes of the build before call', async () => {
    const again = await openedFrom('second', 2, ['apply2', 'apply3']);
    await again.transaction([
      { op: 'check', key: 'k', value: bytes('v') },
      { op: 'put', key: 'k', value: bytes('w') },
    ]);
    assert.equal(text(await again.get('k')), 'w');
    // A node of the build before, still running in a rolling upgrade, writes through the function it knows.
    const written = await db.query(
      `SELECT second_apply(0, ARRAY['k'], $1::bytea, ARRAY[1], ARRAY[1], ARRAY[0], '{}', ''::bytea, '{}', '{}', '{}',
        '{}', 'second_channel', '{}') AS failed`,
      [Buffer.from('x')],
    );
    assert.deepEqual(written, [{ failed: [] }]);
    assert.equal(text(await again.get('k')), 'x');
    await again.close();
  });

  it('migrates a store of schema version 3 and keeps the batch function that nodes of the build before call', async () => {
    const again = await openedFrom('third', 3, ['apply3']);
    await again.transaction([{ op: 'append', key: 'log/', value: bytes('first') }]);
    assert.deepEqual(await again.list('log/'), ['0000000000000001']);
    const written = await db.query(
      `SELECT lost FROM third_apply2(0, ARRAY['k'], $1::bytea, ARRAY[1], ARRAY[1], ARRAY[0], '{}', ''::bytea, '{}',
        '{}', '{}', '{}', 'third_channel', '{}')`,
      [Buffer.from('x')],
    );
    assert.deepEqual(written, [{ lost: [] }]);
    assert.equal(text(await again.get('k')), 'x');
    await again.close();
  });

  it('tells, with a refused check, what the checked keys held once the batch was written', async () => {
    const table = `t${n++}`;
    const [one, two] = [await open(table, 'found-one'), await open(table, 'found-two')];
    await one.put('meta', bytes('first'));
    await two.transaction([
      { op: 'check', key: 'meta', value: bytes('first') },
      { op: 'put', key: 'meta', value: bytes('second') },
    ]);
    await two.put('gone', bytes('soon'));
    await two.delete('gone');
    const refusal = await one
      .transaction([
        { op: 'check', key: 'meta', value: bytes('first') },
        { op: 'check', key: 'gone', value: bytes('soon') },
        { op: 'put', key: 'meta', value: bytes('lost') },
      ])
      .then(
        () => assert.fail('the check of an overwritten value held'),
        (err: unknown) => err,
      );
    assert.ok(refusal instanceof StorageConflictError);
    assert.doesNotMatch(refusal.message, /second|lost/, 'the message names no value');
    const found = refusal.found();
    assert.deepEqual([...(found ?? [])].map(([key, value]) => [key, value && text(value)]).sort(), [
      ['gone', null],
      ['meta', 'second'],
    ]);
    assert.equal(text(await two.get('meta')), 'second', 'nothing of the refused transaction was written');
    // A write that checks what the refusal found commits; one that checks nothing of it is not told anything.
    await one.transaction([
      { op: 'check', key: 'meta', value: found!.get('meta')! },
      { op: 'put', key: 'meta', value: bytes('third') },
    ]);
    assert.equal(text(await two.get('meta')), 'third');
    await assert.rejects(one.transaction([{ op: 'check', key: 'meta', value: null }]), (err: unknown) => {
      assert.ok(err instanceof StorageConflictError);
      assert.equal(text(err.found()!.get('meta')!), 'third');
      return true;
    });
  });

  it('sends the batch after a refusal with the refused caller made again, not before it', async () => {
    const s = await open();
    await s.put('k', bytes('v0'));
    const commits = s.stats().commits;
    const refused = s.transaction([
      { op: 'check', key: 'k', value: bytes('not what it holds') },
      { op: 'put', key: 'k', value: bytes('lost') },
    ]);
    await new Promise((r) => setImmediate(r)); // the refused one is on its way, alone
    const waiting = s.put('other', bytes('queued meanwhile'));
    // As the barrier and a KV write do: a few promise reactions (no I/O) between the refusal and the next try.
    const again = refused.catch(async (err: unknown) => {
      assert.ok(err instanceof StorageConflictError);
      for (let i = 0; i < 20; i++) await Promise.resolve();
      return s.transaction([
        { op: 'check', key: 'k', value: err.found()!.get('k')! },
        { op: 'put', key: 'k', value: bytes('v1') },
      ]);
    });
    await Promise.all([again, waiting]);
    assert.equal(text(await s.get('k')), 'v1');
    assert.equal(s.stats().commits - commits, 2, 'the try again went with the write that waited');
  });

  it('refuses a bad table name and a schema newer than itself', async () => {
    await assert.rejects(openPostgresStorage({ connectionUrl: db.url, table: 'x; drop' }), /table "x; drop" must be/);
    await assert.rejects(openPostgresStorage({ connectionUrl: db.url, table: 'Upper' }), /must be/);
    const s = await open('future');
    await s.close();
    await db.query('UPDATE future_schema SET version = 99');
    await assert.rejects(
      open('future'),
      new RegExp(`schema version 99, newer than this Cofre's \\(${SCHEMA_VERSION}\\)`),
    );
  });

  it('lists a folder by its children, not its whole subtree', async () => {
    const s = await open();
    const table = tables.get(s)!;
    await db.query(`INSERT INTO ${table} SELECT 'm/deep/' || i || '/x', '' FROM generate_series(1, 20000) i`);
    await s.put('m/leaf', bytes(''));
    assert.deepEqual(await s.list('m/'), ['deep/', 'leaf']);
    assert.equal((await s.list('m/deep/')).length, 20000);

    const [row] = await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statements(table, 'unused').listRange}`, [
      'm/',
      'm0',
    ]);
    const plan = JSON.stringify(row?.['QUERY PLAN']);
    assert.doesNotMatch(plan, /Seq Scan/);
    const fetched = scans(row?.['QUERY PLAN']);
    assert.ok(fetched > 0 && fetched < 10, `list read ${fetched} index entries for 2 children of 20001 keys`);
    await s.close();
  });

  it("tells other nodes which keys changed, after the commit, and not the writer's own", async () => {
    const a = await open('shared', 'node-a');
    const b = await open('shared', 'node-b');
    const heardA: (string[] | undefined)[] = [];
    const heardB: (string[] | undefined)[] = [];
    await a.watchChanges((keys) => heardA.push(keys));
    await b.watchChanges((keys) => heardB.push(keys));

    await a.put('sys/token/id/1', bytes('v1'));
    assert.equal(text(await b.get('sys/token/id/1')), 'v1', 'a resolved write is visible on every node');
    await until(() => heardB.length === 1, 'B hears the put');
    assert.deepEqual(heardB[0], ['sys/token/id/1']);

    await a.transaction([
      { op: 'put', key: 'x/1', value: bytes('1') },
      { op: 'delete', key: 'sys/token/id/1' },
      { op: 'put', key: 'x/1', value: bytes('2') },
    ]);
    await a.delete('x/2');
    await until(() => heardB.length === 3, 'B hears the transaction and the delete');
    assert.deepEqual(heardB[1]?.slice().sort(), ['sys/token/id/1', 'x/1']);
    assert.deepEqual(heardB[2], ['x/2']);
    // The payload is JSON inside an array literal: keys with quotes and backslashes arrive as written.
    await a.put('odd/"q"\\b{,}', bytes('1'));
    await until(() => heardB.length === 4, 'B hears the odd key');
    assert.deepEqual(heardB.pop(), ['odd/"q"\\b{,}']);

    // Notifications arrive in commit order: once A hears B's later write, it would have heard its own by then.
    await b.put('from-b', bytes('1'));
    await until(() => heardA.length === 1, 'A hears B');
    assert.deepEqual(heardA, [['from-b']]);
    assert.equal(heardB.length, 3, 'B does not hear itself');

    const many = Array.from({ length: 400 }, (_, i) => ({
      op: 'put' as const,
      key: `big/${'k'.repeat(30)}/${i}`,
      value: bytes(''),
    }));
    await a.transaction(many);
    await until(() => heardB.length === 4, 'B hears the big transaction');
    assert.equal(heardB[3], undefined, 'too many keys for a NOTIFY: drop everything');

    // A transaction that fails notifies nobody.
    const broken = a.transaction([
      { op: 'put', key: 'ok', value: bytes('1') },
      { op: 'put', key: 'bad\0', value: bytes('1') },
    ]);
    await assert.rejects(broken, /NUL/);
    await b.put('marker', bytes('1'));
    await until(() => heardA.length === 2, 'A hears the marker');
    assert.equal(heardB.length, 4);
    await a.close();
    await b.close();
  });

  it('two nodes appending to one log at once: every position once, in commit order, each heard by the other', async () => {
    const a = await open('logs', 'log-a');
    const b = await open('logs', 'log-b');
    const heard = { a: [] as string[], b: [] as string[] };
    await a.watchChanges((keys) => heard.a.push(...(keys ?? ['everything'])));
    await b.watchChanges((keys) => heard.b.push(...(keys ?? ['everything'])));
    const write = (node: PostgresStorage, name: string, i: number) =>
      node.transaction([
        { op: 'put', key: `data/${name}/${i}`, value: bytes(String(i)) },
        { op: 'append', key: 'log/', value: bytes(`${name}${i}`) },
      ]);
    const [fromA, fromB] = await Promise.all(
      ['a', 'b'].map((name) => {
        const node = name === 'a' ? a : b;
        return Promise.all(Array.from({ length: 300 }, (_, i) => write(node, name, i)));
      }),
    );
    const keysOf = (committed: Awaited<ReturnType<PostgresStorage['transaction']>>[]) => committed.map((c) => c![0]!);
    const all = [...keysOf(fromA!), ...keysOf(fromB!)].sort();
    assert.deepEqual(
      all,
      Array.from({ length: 600 }, (_, i) => `log/${String(i + 1).padStart(16, '0')}`),
    );
    // Each node's own writes commit in the order it sent them.
    for (const own of [keysOf(fromA!), keysOf(fromB!)]) assert.deepEqual(own, [...own].sort());
    for (const [i, key] of keysOf(fromA!).entries()) assert.equal(text(await b.get(key)), `a${i}`);
    const logOf = (keys: string[]) => keys.filter((k) => k.startsWith('log/')).sort();
    await until(() => logOf(heard.b).length === 300 && logOf(heard.a).length === 300, 'each hears the other');
    assert.deepEqual(logOf(heard.b), keysOf(fromA!).sort());
    assert.deepEqual(logOf(heard.a), keysOf(fromB!).sort());
    assert.ok(!heard.a.includes('everything') && !heard.b.includes('everything'), 'a batch names its entries');
    await a.close();
    await b.close();
  });

  it('group commit: one batch in flight per node, the next takes every write that came meanwhile, in order', async () => {
    const a = await open('batches', 'batch-a');
    const b = await open('batches', 'batch-b');
    const heard: (string[] | undefined)[] = [];
    await b.watchChanges((keys) => heard.push(keys));
    const first = a.put('seq', bytes('0'));
    await new Promise(setImmediate); // the first batch is on its way
    // Ten more turns of writes while it commits: the old per-turn flush sent eleven commits.
    const writes = [first];
    for (let turn = 1; turn <= 10; turn++) {
      for (let i = 0; i < 20; i++) writes.push(a.put(`batch/${'k'.repeat(120)}/${turn}/${i}`, bytes(`${turn}`)));
      writes.push(a.put('seq', bytes(`${turn}`)));
      await new Promise(setImmediate);
    }
    await Promise.all(writes);
    const { commits, writes: counted } = a.stats();
    assert.equal(counted, writes.length);
    assert.ok(commits <= 5, `${writes.length} writes in ${commits} commits`);
    assert.equal(text(await b.get('seq')), '10', 'the last write queued is the last committed');
    // 200 keys of ~140 bytes do not fit one NOTIFY payload: they come in several, every key named.
    const named = new Set<string>();
    await until(() => {
      for (const keys of heard.splice(0)) {
        assert.ok(keys !== undefined, 'no write was too big to name: nobody drops everything');
        for (const key of keys) named.add(key);
      }
      return named.size === 201;
    }, 'B hears every key');
    // Writes accepted before close() are committed by it.
    const late = [a.put('late/1', bytes('1')), a.put('late/2', bytes('2'))];
    await a.close();
    await Promise.all(late);
    assert.equal(text(await b.get('late/2')), '2');
    await b.close();
  });

  it('the reads of one turn share one query; a read called after a write resolved sees it', async () => {
    const s = await open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(`r/${i}`, bytes(`v${i}`))));
    const before = s.stats().readQueries;
    // 50 keys, ten of them asked twice, and one that is not there, all in one turn.
    const keys = [...Array.from({ length: 50 }, (_, i) => `r/${i}`), ...Array.from({ length: 10 }, (_, i) => `r/${i}`)];
    const got = await Promise.all([...keys, 'r/none'].map((k) => s.get(k)));
    assert.deepEqual(
      got.map((v) => text(v)),
      [...keys.map((k) => `v${k.slice(2)}`), undefined],
    );
    assert.equal(s.stats().readQueries - before, 1, 'one query for the whole turn');
    // Two callers of one key each get bytes of their own: the barrier's cache keeps what a caller got.
    const [x, y] = await Promise.all([s.get('r/1'), s.get('r/1')]);
    assert.notEqual(x!.buffer === y!.buffer && x!.byteOffset === y!.byteOffset, true);
    // Reads keep coming while one is out: they go in the next query, which sees every write resolved before it.
    for (let round = 0; round < 20; round++) {
      await s.put('r/moving', bytes(`m${round}`));
      const [now, again] = await Promise.all([s.get('r/moving'), s.get('r/moving')]);
      assert.equal(text(now), `m${round}`);
      assert.equal(text(again), `m${round}`);
    }
    await s.close();
    await assert.rejects(s.get('r/1'), /closed/);
  });

  it('finds rows by key, never by scanning the table, however much the table grew after the plans were cached', async () => {
    const s = await open();
    const table = tables.get(s)!;
    const batch = (i: number) => Array.from({ length: 10 }, (_, j) => `g/${i * 10 + j}`);
    const fill = (prefix: string, rows: number) =>
      db.query(`INSERT INTO ${table} SELECT '${prefix}/' || i, '\\x00'::bytea FROM generate_series(1, ${rows}) AS i`);
    // A table of a few thousand entries that was never analysed, as a new store's is for its first minute: a
    // sequential scan is what PostgreSQL then plans for "key = ANY ($1)", and the plan stays cached as it grows.
    await fill('seed', 3000);
    await Promise.all(batch(0).map((k) => s.put(k, bytes('v'))));
    // Reads and deletes of one turn each go out as one "key = ANY (...)" statement.
    const churn = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        await Promise.all(batch(0).map((k) => s.get(k)));
        await s.transaction(batch(1).map((key) => ({ op: 'delete', key })));
      }
    };
    await churn(30);
    await fill('grown', 100000);
    const scans = async () =>
      Number((await db.query(`SELECT seq_scan FROM pg_stat_user_tables WHERE relname = $1`, [table]))[0]!.seq_scan);
    const before = await scans();
    await churn(30);
    // Other sessions' statistics arrive within a second or so of their transactions.
    await sleep(1500);
    assert.equal(await scans(), before, 'no sequential scan of the entries');
  });

  it("a batch takes the store's write lock before any row lock, so two nodes' batches cannot deadlock", async () => {
    const a = await open('writelock', 'writelock-a');
    const b = await open('writelock', 'writelock-b');
    await a.put('x', bytes('0'));
    // A's batch takes the write lock, then waits for row x, which another transaction holds.
    const held = await holdRow('writelock', 'x');
    try {
      const onX = a.put('x', bytes('a'));
      const waitsFor = async (node: string, event: string) =>
        (
          await db.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = $2`,
            [`cofre ${node}`, event],
          )
        ).length === 1;
      await until(
        () => waitsFor('writelock-a', 'tuple').then((t) => t || waitsFor('writelock-a', 'transactionid')),
        'A waits for row x',
      );
      // B's batch touches only row y, yet waits for A's: no two batches hold row locks at once.
      let bDone = false;
      const onY = b.put('y', bytes('b')).then(() => (bDone = true));
      await until(() => waitsFor('writelock-b', 'advisory'), 'B waits for the write lock');
      assert.equal(bDone, false);
      await held.release();
      await Promise.all([onX, onY]);
      assert.equal(text(await b.get('x')), 'a');
      assert.equal(text(await a.get('y')), 'b');
    } finally {
      await held.release();
      await a.close();
      await b.close();
    }
  });

  it("sends a batch again when PostgreSQL makes it a deadlock's victim", async () => {
    const s = await open('deadlock', 'deadlock-node');
    await s.transaction([
      { op: 'put', key: 'a', value: bytes('0') },
      { op: 'put', key: 'b', value: bytes('0') },
    ]);
    // Another transaction holds row b; the batch locks a and waits for b; then the other one wants a.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE deadlock SET value = 'x' WHERE key = 'b'`);
      const write = s.transaction([
        { op: 'put', key: 'a', value: bytes('mine') },
        { op: 'put', key: 'b', value: bytes('mine') },
      ]);
      const waiting = async () =>
        (
          await db.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = 'cofre deadlock-node' AND wait_event_type = 'Lock'`,
          )
        ).length === 1;
      await until(waiting, 'the batch waits for row b');
      // PostgreSQL finds the cycle after deadlock_timeout (1 s) in the batch, which waited first: its victim.
      await other.query(`UPDATE deadlock SET value = 'x' WHERE key = 'a'`);
      await other.query('COMMIT');
      await write;
      assert.equal(text(await s.get('a')), 'mine', 'sent again after the other transaction, it wins');
      assert.equal(text(await s.get('b')), 'mine');
      assert.equal(s.stats().deadlockRetries, 1);
    } finally {
      await other.end();
      await s.close();
    }
  });

  it('a listener whose connection is cut reconnects and is told to drop everything', async () => {
    const a = await open('relisten', 'relisten-a');
    const b = await open('relisten', 'relisten-b');
    const heard: (string[] | undefined)[] = [];
    let thrown = 0;
    await b.watchChanges(() => {
      thrown++;
      throw new Error('a broken listener');
    });
    await b.watchChanges((keys) => heard.push(keys));
    assert.equal(await terminate('listen', 'relisten-b'), 1);
    await until(() => heard.length === 1, 'B is told it may have missed changes');
    assert.deepEqual(heard, [undefined]);
    await a.put('after', bytes('1'));
    await until(() => heard.length === 2, 'B hears changes again');
    assert.deepEqual(heard[1], ['after']);
    assert.equal(thrown, 2, 'a throwing listener is called, and does not stop the others');
    await a.close();
    await b.close();
  });

  it('elects exactly one leader, replaced within seconds when its lock connection dies or it closes', async () => {
    const leading = new Set<string>();
    let overlap = false;
    const lost: string[] = [];
    const candidate = async (id: string) => {
      const s = await open('lead', id);
      await s.campaign(`https://${id}:8200`, {
        onElected: () => {
          leading.add(id);
          if (leading.size > 1) overlap = true;
        },
        onLost: () => {
          leading.delete(id);
          lost.push(id);
        },
      });
      return s;
    };
    const nodes = { a: await candidate('a'), b: await candidate('b') };
    await until(() => leading.size === 1, 'a first leader');
    await sleep(1500);
    assert.equal(leading.size, 1, 'still exactly one leader after both tried');
    const first = [...leading][0] as 'a' | 'b';
    const second = first === 'a' ? 'b' : 'a';
    await assert.rejects(nodes[first].campaign('x', { onElected() {}, onLost() {} }), /already campaigns/);

    const registry = await nodes.a.nodes();
    assert.deepEqual(
      registry.map((r) => [r.nodeId, r.apiAddr, r.leader]),
      [
        ['a', 'https://a:8200', first === 'a'],
        ['b', 'https://b:8200', first === 'b'],
      ],
    );
    assert.ok(registry.every((r) => Date.now() - r.lastSeen.getTime() < 10_000));

    assert.equal(await terminate('leader', first), 1);
    const took = await until(() => leading.has(second), 'the other node elected');
    assert.ok(took < 3000, `take-over took ${took} ms`);
    assert.deepEqual(lost, [first], 'the old leader was told it lost');
    await until(async () => (await nodes[second].nodes()).filter((r) => r.leader).length === 1, 'registry');
    assert.equal((await nodes[second].nodes()).find((r) => r.leader)?.nodeId, second);

    // A clean stop steps down first, releases the lock, and leaves the registry.
    await nodes[second].close();
    assert.deepEqual(lost, [first, second]);
    await until(() => leading.has(first), 'the first node elected again');
    assert.deepEqual(
      (await nodes[first].nodes()).map((r) => [r.nodeId, r.leader]),
      [[first, true]],
    );
    assert.equal(overlap, false, 'two leaders at once');
    await nodes[first].close();
  });

  it('replaces a leader whose process is killed with SIGKILL', async () => {
    const script = `
      import { openPostgresStorage } from './src/storage/postgres.ts';
      const url = process.env.COFRE_TEST_PG_URL;
      const s = await openPostgresStorage({ connectionUrl: url, table: 'crash', nodeId: 'child' });
      await s.campaign('https://child:8200', { onElected: () => console.log('LEADING'), onLost() {} });
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, COFRE_TEST_PG_URL: db.url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => out.includes('LEADING'), 'the child leads', 15_000);
      let elected = false;
      const s = await open('crash', 'survivor');
      await s.campaign('https://survivor:8200', { onElected: () => (elected = true), onLost() {} });
      await sleep(1200);
      assert.equal(elected, false, 'the child still leads');
      child.kill('SIGKILL');
      const took = await until(() => elected, 'the survivor elected');
      assert.ok(took < 3000, `take-over took ${took} ms`);
      await s.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('fails to connect with the server address and without the password', async () => {
    const url = new URL(db.url);
    url.password = 'Wr0ng-p4ss%word';
    const wrong = await openPostgresStorage({ connectionUrl: url.toString() }).catch((e: Error) => e);
    assert.ok(wrong instanceof Error);
    assert.match(
      wrong.message,
      new RegExp(`postgres storage at ${url.hostname}:${url.port}: cannot connect: .*password`),
    );
    assert.ok(!wrong.message.includes('Wr0ng') && !wrong.message.includes(db.password), wrong.message);

    const port = await freePort();
    const closed = `postgres://cofre:${encodeURIComponent(db.password)}@127.0.0.1:${port}/postgres`;
    const refused = await openPostgresStorage({ connectionUrl: closed }).catch((e: Error) => e);
    assert.ok(refused instanceof Error);
    assert.match(refused.message, new RegExp(`127\\.0\\.0\\.1:${port}: cannot connect: .*ECONNREFUSED`));
    assert.ok(!refused.message.includes(db.password), refused.message);

    await assert.rejects(openPostgresStorage({ connectionUrl: 'not a url:secret@' }), (e: Error) => {
      assert.match(e.message, /not a URL/);
      assert.ok(!e.message.includes('secret'));
      return true;
    });
  });

  it('survives its connections being cut, and names the server when it cannot reconnect', async () => {
    await db.query('CREATE DATABASE cut');
    const url = new URL(db.url);
    url.pathname = '/cut';
    const s = await openPostgresStorage({ connectionUrl: url.toString(), nodeId: 'cut' });
    opened.push(s);
    const heard: (string[] | undefined)[] = [];
    await s.watchChanges((keys) => heard.push(keys));
    await s.put('k', bytes('v'));
    // Several idle connections in the pool, all cut at once below: a read must get past every dead one.
    await Promise.all(Array.from({ length: 6 }, () => s.get('k')));
    // Idle pooled and dedicated clients get an 'error' event: unhandled, it would end this process.
    await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'cut'");
    assert.equal(text(await s.get('k')), 'v', 'the pool opens a new connection');
    await until(() => heard.length === 1, 'the listener reconnected');
    assert.deepEqual(heard, [undefined]);

    await db.query('ALTER DATABASE cut ALLOW_CONNECTIONS false');
    await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'cut'");
    const err = await s.get('k').catch((e: Error) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, new RegExp(`^postgres storage at ${url.hostname}:${url.port}: cannot connect: .*"cut"`));
    assert.ok(!err.message.includes(db.password));
    await s.close();
  });

  it('tells how long each batch took, a wait for a row lock included', async () => {
    const s = await open('committime', 'committime-node');
    const times: number[] = [];
    s.onCommit((seconds) => times.push(seconds));
    await s.put('x', bytes('0'));
    assert.equal(times.length, 1, 'one batch, told once');
    assert.ok(times[0]! > 0 && times[0]! < 5, `${times[0]} s`);
    // Another transaction holds row x for 300 ms: the batch waits for it, and says so.
    const held = await holdRow('committime', 'x');
    try {
      const write = s.put('x', bytes('1'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await held.release();
      await write;
    } finally {
      await held.release();
    }
    assert.equal(times.length, 2);
    assert.ok(times[1]! >= 0.25, `the batch that waited took ${times[1]} s`);
    assert.equal(s.stats().commits, times.length, 'every batch was told, and only batches');
    await s.close();
  });

  it('counts reads, writes and commits', async () => {
    const s = await open();
    await s.put('a', bytes('1'));
    await s.transaction([
      { op: 'put', key: 'b', value: bytes('1') },
      { op: 'delete', key: 'a' },
    ]);
    await s.get('b');
    assert.deepEqual(s.stats(), { commits: 2, writes: 2, reads: 1, readQueries: 1, deadlockRetries: 0 });
    await s.close();
  });

  /** Rows the plan's index scans returned, summed over their loops. */
  function scans(node: unknown): number {
    if (Array.isArray(node)) return node.reduce((sum: number, n) => sum + scans(n), 0);
    if (!node || typeof node !== 'object') return 0;
    const n = node as Record<string, unknown>;
    const own = /Index/.test(String(n['Node Type'])) ? Number(n['Actual Rows']) * Number(n['Actual Loops']) : 0;
    return own + scans(n.Plan ?? []) + scans(n.Plans ?? []);
  }
});

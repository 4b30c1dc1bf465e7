/**
 * The PostgreSQL storage's tables, created and migrated by Cofre itself when a node starts. Several nodes may
 * start at once: a transaction-scoped advisory lock makes them take turns, so each migration runs exactly once.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

/** Leaves room for the "_schema" and "_nodes" suffixes within PostgreSQL's 63-byte identifiers. */
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export interface SchemaNames {
  /** Schema-qualified, quoted: the entries. */
  entries: string;
  /** Schema-qualified, quoted: the node registry. */
  nodes: string;
  /** Schema-qualified, quoted: the function every write batch calls (postgres-sql.ts). */
  apply: string;
  /** NOTIFY channel of committed changes. */
  channel: string;
  /** pg_try_advisory_lock key of leadership, a bigint as a string (beyond JavaScript's safe integers). */
  leaderLock: string;
  /** pg_advisory_xact_lock key that every write batch takes first (the batch function, below). */
  writeLock: string;
}

/**
 * Each step moves the schema from version i to i + 1. Append, never edit: a database may be at any version.
 * The entries' keys collate as "C" (byte order, which is code point order in UTF-8), so a prefix is a contiguous
 * range of the primary key index; values are ciphertext, stored uncompressed because compressing it is futile.
 * `applyV1` and `applyV2` are the batch functions of the second and third steps, which nodes of an earlier build
 * still call while a rolling upgrade has them run beside newer ones: they stay. All take the same write lock. (The
 * fourth step's function gives change-log entries their positions; an older node picks its own, may overwrite a
 * newer node's events and cannot open the entries the store numbered: that upgrade stops every node first,
 * docs/operations.md.)
 */
type MigrationNames = { entries: string; nodes: string; apply: string; applyV1: string; applyV2: string };
const MIGRATIONS: ((t: MigrationNames) => string[])[] = [
  ({ entries, nodes }) => [
    `CREATE TABLE ${entries} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`,
    `ALTER TABLE ${entries} ALTER COLUMN value SET STORAGE EXTERNAL`,
    `CREATE TABLE ${nodes} (node_id text PRIMARY KEY, api_addr text NOT NULL, ` +
      `last_seen timestamptz NOT NULL, leader boolean NOT NULL DEFAULT false)`,
  ],
  ({ entries, applyV1 }) => [applyFunction(entries, applyV1, 1)],
  ({ entries, applyV2 }) => [applyFunction(entries, applyV2, 2)],
  ({ entries, apply }) => [applyFunction(entries, apply, 3)],
];

/**
 * The write of one group-committed batch: the ops of many callers, each caller's check ops deciding whether its
 * other ops apply (returns the callers whose checks failed, and from the third step on what their checked keys
 * hold: tellCurrent). A function because the checks must see every batch committed before this one: batches take
 * turns on an advisory lock, and a single statement reads as of its start, before it waited for the lock, while
 * each statement of a volatile function reads anew. Of several ops on one key, the last of a caller that applies
 * wins. The notifications commit with the writes.
 *
 * Values come as one binary bytea with each op's start (1-based) and length (-1: a delete, or a check that expects
 * no entry): PostgreSQL parsing a bytea[] in text form (hex) was a quarter of its CPU per write. A check expects
 * the value exactly, or (check_exact false) a value that begins with its bytes. Every lookup is a "key = ..." one
 * (or, for a log, a backward scan of its key range), so that each statement's plan (made once per connection) is
 * an index scan whatever the batch.
 *
 * `version` 3 also appends to logs (the storage port's append op; appendToLogs).
 */
function applyFunction(entries: string, apply: string, version: 1 | 2 | 3): string {
  const value = (blob: string, alias: string) =>
    `CASE WHEN ${alias}.len < 0 THEN NULL ELSE substring(${blob} FROM ${alias}.start FOR ${alias}.len) END`;
  const returns = {
    1: 'int[]',
    2: 'TABLE (lost int[], current_keys text[], current_values bytea[])',
    3: 'TABLE (lost int[], current_keys text[], current_values bytea[], logged_keys text[])',
  }[version];
  const logArgs = `, log_prefixes text[], log_blob bytea, log_starts int[], log_lengths int[], log_callers int[],
      node_id text`;
  return `CREATE FUNCTION ${apply}(write_lock bigint,
      op_keys text[], op_blob bytea, op_starts int[], op_lengths int[], op_callers int[],
      check_keys text[], check_blob bytea, check_starts int[], check_lengths int[], check_callers int[],
      check_exact boolean[], channel text, payloads text[]${version === 3 ? logArgs : ''})
    RETURNS ${returns} LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      failed int[] := '{}';
      deleted text[];
      put_keys text[];
      put_values bytea[];${version === 3 ? '\n      logged text[];' : ''}
    BEGIN
      PERFORM pg_advisory_xact_lock(write_lock);
      IF cardinality(check_keys) > 0 THEN
        SELECT coalesce(array_agg(DISTINCT c.caller), '{}') INTO failed
          FROM unnest(check_keys, check_starts, check_lengths, check_callers, check_exact)
            AS c(key, start, len, caller, exact)
          WHERE NOT coalesce((SELECT CASE
              WHEN c.len < 0 THEN false
              WHEN c.exact THEN e.value = ${value('check_blob', 'c')}
              ELSE substring(e.value FROM 1 FOR c.len) = ${value('check_blob', 'c')} END
            FROM ${entries} AS e WHERE e.key = c.key), c.len < 0);
      END IF;
      SELECT array_agg(live.key) FILTER (WHERE live.len < 0),
          array_agg(live.key) FILTER (WHERE live.len >= 0),
          array_agg(${value('op_blob', 'live')}) FILTER (WHERE live.len >= 0)
        INTO deleted, put_keys, put_values
        FROM (SELECT DISTINCT ON (o.key) o.key, o.start, o.len
          FROM unnest(op_keys, op_starts, op_lengths, op_callers) WITH ORDINALITY AS o(key, start, len, caller, n)
          WHERE o.caller <> ALL (failed)
          ORDER BY o.key, o.n DESC) AS live;
      IF deleted IS NOT NULL THEN
        DELETE FROM ${entries} WHERE key = ANY (deleted);
      END IF;
      IF put_keys IS NOT NULL THEN
        INSERT INTO ${entries} (key, value) SELECT * FROM unnest(put_keys, put_values)
          ON CONFLICT (key) DO UPDATE SET value = excluded.value;
      END IF;
      ${version === 3 ? appendToLogs(entries) : ''}
      PERFORM pg_notify(channel, payload) FROM unnest(payloads) AS payload;
      ${version === 3 ? notifyLogs() : ''}
      ${version === 1 ? 'RETURN failed;' : tellCurrent(entries, version === 3)}
    END
    $fn$`;
}

/**
 * The append ops of the callers whose checks held: each is given the next position of its log (the prefix it
 * names), after the last stored, in op order. Under the write lock every batch before this one has committed and
 * none after it can start, so positions follow commit order without gaps. `logged` holds each op's key (null for a
 * refused caller's). The 16 digits are LOG_POSITION_DIGITS (src/core/storage.ts), written out: a step's text never
 * changes.
 */
function appendToLogs(entries: string): string {
  const [low, high] = ['0', '9'].map((d) => `p.prefix || '${d.repeat(16)}'`);
  // The last position is looked up once per log, not once per entry: this runs under the write lock.
  return `IF cardinality(log_prefixes) > 0 THEN
        WITH a AS (SELECT * FROM unnest(log_prefixes, log_callers) WITH ORDINALITY AS a(prefix, caller, n)),
          last AS (SELECT p.prefix, coalesce((SELECT substr(e.key, length(p.prefix) + 1)::bigint FROM ${entries} AS e
              WHERE e.key >= ${low} AND e.key <= ${high} ORDER BY e.key DESC LIMIT 1), 0) AS position
            FROM (SELECT DISTINCT a.prefix FROM a) AS p)
        SELECT array_agg(l.key ORDER BY l.n) INTO logged FROM (
          SELECT a.n, CASE WHEN a.caller = ANY (failed) THEN NULL ELSE a.prefix || lpad((last.position
            + count(*) FILTER (WHERE a.caller <> ALL (failed)) OVER (PARTITION BY a.prefix ORDER BY a.n))::text,
            16, '0') END AS key
          FROM a JOIN last ON last.prefix = a.prefix) AS l;
        INSERT INTO ${entries} (key, value)
          SELECT k.key, substring(log_blob FROM k.start FOR k.len)
          FROM unnest(logged, log_starts, log_lengths) AS k(key, start, len) WHERE k.key IS NOT NULL;
      END IF;`;
}

/**
 * One notification per log appended to, after the batch's others: its first new position and how many follow
 * (they are consecutive), where naming each key would overflow a payload for a large batch.
 */
function notifyLogs(): string {
  return `PERFORM pg_notify(channel, json_build_object('node', node_id, 'log', r.log, 'first', r.first,
          'count', r.count)::text)
        FROM (SELECT left(k.key, -16) AS log, min(right(k.key, 16)::bigint) AS first, count(*) AS count
          FROM unnest(logged) AS k(key) WHERE k.key IS NOT NULL GROUP BY 1) AS r;`;
}

/**
 * The end of the third step's batch function: besides the callers whose checks failed, what their checked keys
 * hold once the batch is written (null: no entry), so that a caller can make its change again at once, without
 * reading them back (src/core/barrier.ts). Only the keys that refused callers checked: a few per conflict, none
 * otherwise.
 */
function tellCurrent(entries: string, tellsLogged: boolean): string {
  return `lost := failed;
      SELECT array_agg(k.key), array_agg((SELECT e.value FROM ${entries} AS e WHERE e.key = k.key))
        INTO current_keys, current_values
        FROM (SELECT DISTINCT c.key FROM unnest(check_keys, check_callers) AS c(key, caller)
          WHERE c.caller = ANY (failed)) AS k;
      ${tellsLogged ? 'logged_keys := logged;' : ''}
      RETURN NEXT;`;
}

export const SCHEMA_VERSION = MIGRATIONS.length;

export function checkTableName(table: string): void {
  if (!TABLE_NAME.test(table)) {
    throw new Error(
      `postgres storage: table "${table}" must be 1 to 48 lower-case letters, digits or "_", not starting with a digit`,
    );
  }
}

/** Creates or migrates the tables of `table` in the connection's current schema and names what the store uses. */
export async function ensureSchema(client: pg.ClientBase, table: string): Promise<SchemaNames> {
  await client.query('BEGIN');
  try {
    const names = await prepare(client, table);
    await client.query('COMMIT');
    return names;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function prepare(client: pg.ClientBase, table: string): Promise<SchemaNames> {
  const { rows } = await client.query<{ schema: string | null; encoding: string }>(
    "SELECT current_schema() AS schema, current_setting('server_encoding') AS encoding",
  );
  const { schema, encoding } = rows[0] ?? { schema: null, encoding: '' };
  if (!schema) throw new Error('no schema to create the tables in: the search_path names no existing schema');
  // Keys are UTF-8 strings whose byte order list() relies on; other encodings would reject or reorder them.
  if (encoding !== 'UTF8' && encoding !== 'SQL_ASCII') {
    throw new Error(`the database's encoding is ${encoding}; Cofre needs a UTF8 database`);
  }
  // Two clusters may share a database in different schemas: everything shared (locks, channel) names both.
  const scope = `${schema}.${table}`;
  await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey('schema', scope)]);
  const q = (name: string) => `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
  const names = { entries: q(table), nodes: q(`${table}_nodes`), apply: q(`${table}_apply3`) };
  const versionTable = q(`${table}_schema`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${versionTable} (id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)`,
  );
  const found = await client.query<{ version: number }>(`SELECT version FROM ${versionTable}`);
  const version = found.rows[0]?.version ?? 0;
  if (version > SCHEMA_VERSION) {
    throw new Error(`${scope} is at schema version ${version}, newer than this Cofre's (${SCHEMA_VERSION}): upgrade`);
  }
  const steps = { ...names, applyV1: q(`${table}_apply`), applyV2: q(`${table}_apply2`) };
  for (const step of MIGRATIONS.slice(version)) for (const sql of step(steps)) await client.query(sql);
  await client.query(
    `INSERT INTO ${versionTable} (id, version) VALUES (1, $1)
     ON CONFLICT (id) DO UPDATE SET version = excluded.version`,
    [SCHEMA_VERSION],
  );
  // The table name keeps the channel recognisable in pg_stat_activity; the hash keeps schemas apart.
  const channel = `${table}_${digest(scope).toString('hex').slice(0, 12)}`;
  return { ...names, channel, leaderLock: lockKey('leader', scope), writeLock: lockKey('write', scope) };
}

/** A bigint advisory-lock key for `purpose` on one store; hashing keeps different stores' keys apart. */
function lockKey(purpose: string, scope: string): string {
  return digest(`${purpose}:${scope}`).readBigInt64BE(0).toString();
}

function digest(s: string): Buffer {
  return createHash('sha256').update(`cofre:${s}`).digest();
}

/**
 * The statements of the PostgreSQL storage, over its (quoted, schema-qualified) entries table.
 *
 * Every write is a single statement carrying its pg_notify, so PostgreSQL makes it atomic without BEGIN/COMMIT
 * round trips and the notification commits with it: other nodes hear of a change exactly when they can see it.
 */

/**
 * list() reads the leaves under a prefix with plain index range scans, and jumps over each child folder's subtree
 * instead of reading it ("child/" + anything sorts below "child0"): a folder may hold millions of keys (a mount's
 * secrets, a role's leases). The recursive query cuts the range into segments, each its leaves followed by the
 * first key of one folder, found by an index scan that stops at the first key with a "/" past the prefix. So a
 * listing reads each leaf twice and each folder once, in one round trip. A segment's leaves come back as one
 * array, already in order, so that only segments are sorted, not every key. A parent-path column would do as
 * well for "folder/" prefixes, but the port also lists prefixes that stop mid-name.
 *
 * $1 is the prefix; $2, when bounded, the smallest string above every string starting with it (prefixEnd).
 * Scalar subqueries are never flattened into joins, so every scan stays a parameterized index scan.
 */
function listStatement(t: string, bounded: boolean): string {
  const upTo = (bound: string) => `SELECT key FROM ${t} WHERE key >= seg.lo AND key < ${bound} ORDER BY key`;
  const nextFolder = (from: string) =>
    `SELECT key FROM ${t} WHERE key >= ${from} ${bounded ? 'AND key < $2::text' : ''}
       AND strpos(substr(key, length($1::text) + 1), '/') > 0 ORDER BY key LIMIT 1`;
  const rest = bounded ? upTo('$2::text') : `SELECT key FROM ${t} WHERE key >= seg.lo ORDER BY key`;
  return `WITH RECURSIVE seg(n, lo, folder) AS (
      SELECT 1, $1::text COLLATE "C", (${nextFolder('$1::text')})
    UNION ALL
      SELECT seg.n + 1, skip.lo, (${nextFolder('skip.lo')})
      FROM seg CROSS JOIN LATERAL (SELECT
        left(seg.folder, length($1::text) + strpos(substr(seg.folder, length($1::text) + 1), '/') - 1) || '0' AS lo
      ) skip
      WHERE seg.folder IS NOT NULL)
    SELECT CASE WHEN seg.folder IS NULL THEN ARRAY(${rest}) ELSE ARRAY(${upTo('seg.folder')}) END AS leaves,
      seg.folder
    FROM seg ORDER BY seg.n`;
}

/**
 * `writeLock`: the advisory-lock key that every batch takes first (a transaction-level lock, released at its
 * commit). Batches of different nodes then never hold row locks at once, so they cannot deadlock (a deadlock costs
 * PostgreSQL's deadlock_timeout, a second, during which the victim node's writes all wait). It serialises little:
 * PostgreSQL already commits one NOTIFYing transaction at a time.
 */
export function statements(t: string, writeLock = '0') {
  if (!/^-?\d+$/.test(writeLock)) throw new Error('postgres storage: the write lock key must be an integer');
  // The channel and the payloads (one or more: postgres-changes.ts) are the statement's last two parameters, after
  // n - 1 of its own. Notifications of one transaction are delivered at its commit, in the order they were sent.
  const withNotify = (sql: string, n: number) =>
    `${sql} SELECT pg_notify($${n}::text, payload) FROM unnest($${n + 1}::text[]) AS payload`;
  // A scalar subquery of a CTE runs once, before the first row is looked at: the lock comes before any row lock.
  const locked = '(SELECT true FROM locked)';
  return {
    get: `SELECT value FROM ${t} WHERE key = $1`,
    // Every write (a group-committed batch) is this one statement. Keys are distinct (latestPerKey), so the two
    // parts never touch the same row.
    apply: withNotify(
      `WITH locked AS (SELECT pg_advisory_xact_lock(${writeLock}::bigint)),
         removed AS (DELETE FROM ${t} WHERE key = ANY($1::text[]) AND ${locked}),
         stored AS (INSERT INTO ${t} (key, value) SELECT * FROM unnest($2::text[], $3::bytea[]) WHERE ${locked}
           ON CONFLICT (key) DO UPDATE SET value = excluded.value)`,
      4,
    ),
    listOpen: listStatement(t, false),
    listRange: listStatement(t, true),
  };
}

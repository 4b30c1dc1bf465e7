/**
 * The statements of the PostgreSQL storage, over its (quoted, schema-qualified) entries table.
 *
 * Every write is a single call of the schema's batch function carrying its pg_notify, so PostgreSQL makes it atomic
 * without BEGIN/COMMIT round trips and the notification commits with it: other nodes hear of a change exactly when
 * they can see it.
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
 * `apply`: the batch function of the schema (postgres-schema.ts), called with the write lock's key. Its three blobs
 * of values are the last parameters sent ($18 to $20), though not the function's last arguments: pg builds each
 * message in a buffer that it regrows by half its size plus what is added, so a blob of tens of kilobytes written
 * after the small arrays costs one regrowth, where written first it made every later array copy it again. The
 * writer's buffers were about a third of what a node allocated outside V8's heap per write (such allocations start
 * its full collections: docs/operations.md, "Memory and garbage collection"); in this order they are 2.6 times the
 * blob's size per batch instead of 3.4.
 */
export function statements(t: string, apply: string) {
  return {
    get: `SELECT value FROM ${t} WHERE key = $1`,
    getMany: `SELECT key, value FROM ${t} WHERE key = ANY ($1::text[])`,
    apply: `SELECT lost, current_keys, current_values, logged_keys FROM ${apply}($1::bigint, $2::text[], $20::bytea,
      $3::int[], $4::int[], $5::int[], $6::text[], $18::bytea, $7::int[], $8::int[], $9::int[], $10::boolean[],
      $11::text, $12::text[], $13::text[], $19::bytea, $14::int[], $15::int[], $16::int[], $17::text)`,
    listOpen: listStatement(t, false),
    listRange: listStatement(t, true),
  };
}

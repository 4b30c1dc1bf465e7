// Database secrets engine benchmark (issue 3): dynamic PostgreSQL credentials issued per second, with p50/p99,
// how fast their leases are revoked, and whether any role is left behind.
//
//   npm run build && node --import tsx bench/database.ts
//
// A real PostgreSQL (scripts/test-databases.ts), `cofre server --dev` as a child process (dist/cli/main.js), a
// database mount and two roles (a bare CREATE ROLE, and CREATE ROLE + GRANT on one shared table). For each: the
// same statements straight through `pg` (the database's own rate here), then autocannon reading
// database/creds/ROLE through Cofre (a transaction on PostgreSQL plus a durable lease write per credential), then
// one revoke-prefix for all of them and a count of what is left in pg_roles.
//
// Options (environment): BENCH_SECONDS (15), BENCH_CONNECTIONS (16), BENCH_POOL (max_open_connections, 8).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { freePort } from '../test/support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const POOL = Number(process.env.BENCH_POOL ?? 8);
const TOKEN = 'bench-root';

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

async function call(url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${url}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': TOKEN, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Two roles: a bare login role, and one that is also granted SELECT on a shared table (the usual case). */
const STATEMENT_SETS: Record<string, string[]> = {
  'create role': [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
  'create role + grant': [
    `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
    'GRANT SELECT ON bench TO "{{name}}";',
  ],
};

/**
 * The same statements straight through a `pg` pool of the same size, no Cofre: what the database itself manages
 * on this machine. Conflicting catalog updates are retried, as the driver does.
 */
async function directBaseline(db: TestDatabase, creation: string[]): Promise<number> {
  const pool = new pg.Pool({ connectionString: db.url, max: POOL });
  pool.on('error', () => undefined);
  let created = 0;
  const end = Date.now() + SECONDS * 1000;
  const worker = async (w: number) => {
    for (let i = 0; Date.now() < end; i++) {
      const name = `d-${w}-${i}-${Date.now()}`;
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        for (const s of creation) {
          await c.query(
            s
              .replace(/\{\{name\}\}/g, name)
              .replace('{{password}}', 'Aa1-bench-password-xyz')
              .replace('{{expiration}}', '2100-01-01 00:00:00+0000'),
          );
        }
        await c.query('COMMIT');
        created++;
      } catch {
        await c.query('ROLLBACK').catch(() => undefined);
      } finally {
        c.release();
      }
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => worker(w)));
  await pool.end();
  await db.query(
    "DO $$DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'd-%' LOOP EXECUTE 'DROP OWNED BY ' || quote_ident(r.rolname); EXECUTE 'DROP ROLE ' || quote_ident(r.rolname); END LOOP; END$$",
  );
  return Math.round(created / SECONDS);
}

async function measure(url: string, db: TestDatabase, label: string, creation: string[]) {
  const role = label.replace(/[^a-z]+/g, '-');
  await call(url, 'POST', `database/roles/${role}`, {
    db_name: 'pg',
    creation_statements: creation,
    default_ttl: '1h',
  });
  log(`${label}: directly through pg for ${SECONDS} s`);
  const directPerSec = await directBaseline(db, creation);
  log(`${label}: through Cofre for ${SECONDS} s at ${CONNECTIONS} connections (pool ${POOL})`);
  const result = await autocannon({
    url: `${url}/v1/database/creds/${role}`,
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { 'x-vault-token': TOKEN },
  });
  // Requests autocannon gave up on at the end still finish on the server: let them, before counting.
  await new Promise((r) => setTimeout(r, 3000));
  const leases = (
    (await call(url, 'GET', `sys/leases/lookup/database/creds/${role}/?list=true`)) as { data: { keys: string[] } }
  ).data.keys.length;
  const roles = await db.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-%'");
  log(`${label}: revoking ${leases} leases with one revoke-prefix`);
  const started = Date.now();
  await call(url, 'PUT', `sys/leases/revoke-prefix/database/creds/${role}`, {});
  const revokeSeconds = (Date.now() - started) / 1000;
  const left = await db.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-%'");
  return {
    statements: label,
    directPerSec,
    issuedPerSec: Math.round(result.requests.average),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    leases,
    rolesBeforeRevoke: roles[0]?.n,
    revokedPerSec: Math.round(leases / revokeSeconds),
    rolesLeftBehind: left[0]?.n,
  };
}

async function main(): Promise<void> {
  const db = await startPostgres({ durable: true });
  const dir = mkdtempSync(join(tmpdir(), 'cofre-bench-db-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ['server', '--dev', '--data-dir', dir, '--dev-listen-address', `127.0.0.1:${port}`];
  const server = spawn(process.execPath, ['dist/cli/main.js', ...args, '--dev-root-token-id', TOKEN], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      if (i > 200) throw new Error('server did not start');
      if (
        await fetch(`${url}/v1/sys/health`).then(
          (r) => r.status === 200,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await db.query('CREATE TABLE IF NOT EXISTS bench (x int)');
    await call(url, 'POST', 'sys/mounts/database', { type: 'database' });
    await call(url, 'POST', 'database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres`,
      username: db.user,
      password: db.password,
      allowed_roles: '*',
      max_open_connections: POOL,
    });
    const results = [];
    for (const [label, creation] of Object.entries(STATEMENT_SETS)) {
      results.push(await measure(url, db, label, creation));
    }
    const machine = `${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
    console.log(JSON.stringify({ machine, node: process.version, connections: CONNECTIONS, pool: POOL, results }));
  } finally {
    server.kill('SIGTERM');
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

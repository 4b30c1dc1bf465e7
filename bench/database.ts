// Database secrets engine benchmark (issue 3): dynamic PostgreSQL credentials issued per second, with p50/p99,
// and how fast their leases are revoked afterwards.
//
//   npm run build && node --import tsx bench/database.ts
//
// A real PostgreSQL (scripts/test-databases.ts), `cofre server --dev` as a child process (dist/cli/main.js), a
// database mount with one role whose creation statements create a login role and grant SELECT on one table, then
// autocannon reading database/creds/ROLE. Every credential is a real CREATE ROLE in a transaction plus a durable
// lease write. Afterwards every lease is revoked with one revoke-prefix and pg_roles is checked for leftovers.
//
// Options (environment): BENCH_SECONDS (15), BENCH_CONNECTIONS (16), BENCH_POOL (max_open_connections, 8).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startPostgres } from '../scripts/test-databases.js';
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

async function main(): Promise<void> {
  const db = await startPostgres();
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
      allowed_roles: 'app',
      max_open_connections: POOL,
    });
    await call(url, 'POST', 'database/roles/app', {
      db_name: 'pg',
      creation_statements: [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
        'GRANT SELECT ON bench TO "{{name}}";',
      ],
      default_ttl: '1h',
    });

    log(`issuing credentials for ${SECONDS} s at ${CONNECTIONS} connections (pool ${POOL})`);
    const result = await autocannon({
      url: `${url}/v1/database/creds/app`,
      connections: CONNECTIONS,
      duration: SECONDS,
      headers: { 'x-vault-token': TOKEN },
    });
    const issued = result['2xx'];
    const failed = result.non2xx + result.errors;

    log(`revoking ${issued} leases with one revoke-prefix`);
    const started = Date.now();
    await call(url, 'PUT', 'sys/leases/revoke-prefix/database/creds/app', {});
    const revokeSeconds = (Date.now() - started) / 1000;
    const left = await db.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-%'");

    const line = {
      machine: `${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      connections: CONNECTIONS,
      pool: POOL,
      issuedPerSec: Math.round(result.requests.average),
      p50ms: result.latency.p50,
      p99ms: result.latency.p99,
      issued,
      failed,
      revokedPerSec: Math.round(issued / revokeSeconds),
      rolesLeftBehind: left[0]?.n,
    };
    console.log(JSON.stringify(line));
  } finally {
    server.kill('SIGTERM');
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

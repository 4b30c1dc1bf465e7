// A throwaway PostgreSQL server for a test run (DESIGN.md "Test environment"), or the machine's own when PGHOST
// points at one. Password checks are real: TCP connections authenticate with SCRAM, so an old password fails.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  account,
  freePort,
  requireBinaries,
  startServer,
  waitReady,
  type TestDatabase,
} from './test-databases-process.js';

const execFileP = promisify(execFile);
const INSTALL = 'apt-get install -y postgresql';

/** `durable`: PostgreSQL's own defaults (fsync, synchronous commit) for benchmarks; tests skip them for speed. */
export async function startPostgres(opts: { durable?: boolean } = {}): Promise<TestDatabase> {
  if (process.env.PGHOST) return existing();
  const bin = postgresBinDir();
  requireBinaries([path.join(bin, 'initdb'), path.join(bin, 'postgres')], INSTALL);
  // PostgreSQL refuses to run as root; as root we hand the directory to its own OS account.
  const ids = process.getuid?.() === 0 ? account('postgres') : undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-pg-'));
  const f = (p: string) => path.join(dir, p);
  const user = 'postgres';
  const password = randomBytes(12).toString('hex');
  writeFileSync(f('pwfile'), `${password}\n`);
  if (ids) for (const p of [dir, f('pwfile')]) chownSync(p, ids.uid, ids.gid);

  const initdbArgs = [
    ...['-D', f('data'), '-U', user, `--pwfile=${f('pwfile')}`, '--auth-local=trust', '--auth-host=scram-sha-256'],
    ...['-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
  ];
  await execFileP(path.join(bin, 'initdb'), initdbArgs, { cwd: dir, ...ids }).catch(
    (e: Error & { stderr?: string }) => {
      throw new Error(`initdb failed: ${e.stderr ?? e.message}`);
    },
  );

  const port = await freePort();
  const server = startServer(
    dir,
    path.join(bin, 'postgres'),
    [
      ...['-D', f('data'), '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'],
      // Durability is pointless for data thrown away after the run; these make it start and write faster.
      ...(opts.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients (a test's pool) to disconnect.
    { log: f('postgres.log'), signal: 'SIGINT', ...ids },
  );
  const db = handle('127.0.0.1', port, user, password, server.stop);
  db.socketUrl = handle(dir, port, user, password, server.stop).url;
  try {
    await waitReady(server, 'postgres', async () => void (await db.query('SELECT 1')));
  } catch (err) {
    await server.stop();
    throw err;
  }
  return db;
}

/** The newest /usr/lib/postgresql/N/bin (Debian's layout); 15 when none is installed, for the error message. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0] ?? '15';
  return path.join(root, newest, 'bin');
}

function existing(): TestDatabase {
  const env = process.env;
  return handle(env.PGHOST ?? '', Number(env.PGPORT ?? 5432), env.PGUSER ?? 'postgres', env.PGPASSWORD ?? '', () =>
    Promise.resolve(),
  );
}

function handle(host: string, port: number, user: string, password: string, stop: () => Promise<void>): TestDatabase {
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  // A socket directory (PGHOST=/var/run/postgresql) cannot be a URL's host; libpq and pg take it as ?host=.
  const url = host.startsWith('/')
    ? `postgres://${auth}@localhost:${port}/postgres?host=${encodeURIComponent(host)}`
    : `postgres://${auth}@${host}:${port}/postgres`;
  const query = async (sql: string, params?: unknown[]) => {
    const client = new pg.Client({ host, port, user, password, database: 'postgres', connectionTimeoutMillis: 2000 });
    client.on('error', () => {}); // a server going away mid-test must not crash the test process
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  return { host, port, user, password, url, query, stop };
}

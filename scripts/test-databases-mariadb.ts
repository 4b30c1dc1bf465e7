// A throwaway MariaDB server for a test run, on a loopback port and socket of its own.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort, requireBinaries, startServer, waitReady, type TestDatabase } from './test-databases-process.js';

const execFileP = promisify(execFile);
const INSTALL = 'apt-get install -y mariadb-server';

export async function startMariadb(): Promise<TestDatabase> {
  const mariadbd = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((f) => existsSync(f)) ?? '/usr/sbin/mariadbd';
  const installDb = '/usr/bin/mariadb-install-db';
  requireBinaries([mariadbd, installDb], INSTALL);
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-mariadb-'));
  const f = (p: string) => path.join(dir, p);
  const user = 'root';
  const password = randomBytes(12).toString('hex');

  // --auth-root-authentication-method=normal: a root with a password (the default, unix_socket, works only for
  // the OS root over the socket). --skip-test-db: no test database, whose anonymous accounts would shadow
  // 'name'@'%' for connections from 127.0.0.1.
  const installArgs = [
    ...['--no-defaults', `--datadir=${f('data')}`, '--basedir=/usr', ...asRoot],
    ...['--auth-root-authentication-method=normal', '--skip-test-db'],
  ];
  await execFileP(installDb, installArgs, { cwd: dir }).catch((e: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`mariadb-install-db failed: ${e.stderr || e.stdout || e.message}`);
  });
  // Run before the server accepts connections: no anonymous accounts, and root with the password from anywhere.
  // The install creates root@HOSTNAME, root@127.0.0.1 and root@::1 without a password; they would shadow root@'%'.
  writeFileSync(
    f('init.sql'),
    [
      `DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');`,
      `DELETE FROM mysql.proxies_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');`,
      'FLUSH PRIVILEGES;',
      `ALTER USER 'root'@'localhost' IDENTIFIED BY '${password}';`,
      `CREATE USER 'root'@'%' IDENTIFIED BY '${password}';`,
      `GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;`,
    ].join('\n'),
  );

  const port = await freePort();
  const server = startServer(
    dir,
    mariadbd,
    [
      ...['--no-defaults', `--datadir=${f('data')}`, `--socket=${f('mysqld.sock')}`, `--pid-file=${f('mysqld.pid')}`],
      ...[`--port=${port}`, '--bind-address=127.0.0.1', '--skip-networking=0', ...asRoot, `--tmpdir=${dir}`],
      // Accounts match on the client's IP, never on a name lookup of it (127.0.0.1 would become 'localhost').
      ...['--skip-name-resolve', `--init-file=${f('init.sql')}`, `--log-error=${f('mariadb.log')}`],
      ...['--innodb-buffer-pool-size=16M', '--innodb-flush-log-at-trx-commit=0', '--skip-log-bin'],
    ],
    { log: f('mariadb.log'), signal: 'SIGTERM' },
  );

  const query = async (sql: string, params?: unknown[]) => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user, password, connectTimeout: 2000 });
    conn.on('error', () => {}); // a server going away mid-test must not crash the test process
    try {
      const [rows] = await conn.query(sql, params);
      return (Array.isArray(rows) ? rows : []) as Record<string, unknown>[];
    } finally {
      await conn.end().catch(() => {});
    }
  };
  try {
    await waitReady(server, 'mariadbd', async () => void (await query('SELECT 1')));
  } catch (err) {
    await server.stop();
    throw err;
  }
  const url = `mysql://${user}:${password}@127.0.0.1:${port}/`;
  return { host: '127.0.0.1', port, user, password, url, query, stop: server.stop };
}

/**
 * mysql-database-plugin: Vault's MySQL/MariaDB plugin over a `mysql2` pool. MySQL commits DDL (CREATE USER,
 * GRANT) as it goes, so a transaction cannot undo a half-done creation: on failure the driver runs the role's
 * rollback statements, or drops the user, before reporting the error.
 */
import mysql from 'mysql2/promise';
import { DatabaseError, type ConnectionSettings, type DatabaseDriver } from './driver.js';
import { noCreationStatements, reasonOf, redact, statementFailed, unreachable, type Endpoint } from './redact.js';
import { expandStatements } from './statements.js';

// Vault's; MySQL 5.7+ and MariaDB accept user names of up to 32 characters.
const DEFAULT_USERNAME_TEMPLATE =
  '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}';
const DEFAULT_ROLLBACK = `DROP USER IF EXISTS '{{name}}'@'%'`;
const DEFAULT_REVOKE = [
  `REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{{name}}'@'%'`,
  `DROP USER IF EXISTS '{{name}}'@'%'`,
];
const DEFAULT_SET_PASSWORD = `ALTER USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`;

type Connection = mysql.PoolConnection;

export function mysqlDriver(settings: ConnectionSettings): DatabaseDriver {
  const { options, endpoint } = parseConnectionUrl(settings);
  const adminSecrets = [settings.password, options.password ?? ''];
  const pool = mysql.createPool({
    ...options,
    connectionLimit: Math.max(1, settings.maxOpenConnections),
    multipleStatements: false,
    connectTimeout: 5000,
    idleTimeout: 30_000,
    enableKeepAlive: true,
  });
  // mysql2 handles a pooled connection's first error only; a dying server can raise more. And it has no maximum
  // connection lifetime: we note when each connection was made and retire old ones when they are handed out.
  const born = new WeakMap<object, number>();
  pool.on('connection', (conn) => {
    conn.on('error', () => {});
    born.set(conn, Date.now());
  });
  const tooOld = (conn: Connection) => {
    const lifetime = settings.maxConnectionLifetime * 1000;
    const since = born.get(conn.connection);
    return lifetime > 0 && since !== undefined && Date.now() - since > lifetime;
  };

  async function withConnection<T>(what: string, secrets: string[], fn: (c: Connection) => Promise<T>): Promise<T> {
    const all = [...adminSecrets, ...secrets];
    let conn: Connection;
    try {
      conn = await pool.getConnection();
      while (tooOld(conn)) {
        conn.destroy();
        conn = await pool.getConnection();
      }
    } catch (err) {
      throw unreachable(endpoint, err, all);
    }
    try {
      return await fn(conn);
    } catch (err) {
      if (err instanceof DatabaseError) throw err;
      throw statementFailed(endpoint, what, err, all);
    } finally {
      conn.release();
    }
  }

  // One statement at a time over the text protocol: CREATE USER and GRANT are not all preparable everywhere.
  const run = async (c: Connection, statements: string[]) => {
    for (const s of statements) await c.query(s);
  };
  /** At `host`, or at any host; an admin not allowed to read mysql.user gets "maybe" (true). */
  const userExists = async (c: Connection, name: string, host?: string) => {
    const found =
      host === undefined
        ? c.query('SELECT 1 FROM mysql.user WHERE User = ?', [name])
        : c.query('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [name, host]);
    return found.then(([rows]) => !Array.isArray(rows) || rows.length > 0).catch(() => true);
  };

  return {
    plugin: 'mysql-database-plugin',
    defaultUsernameTemplate: DEFAULT_USERNAME_TEMPLATE,
    maxUsernameLength: 32,

    verify: () => withConnection('verifying the connection', [], async (c) => void (await c.query('SELECT 1'))),

    newUser: async (user) => {
      const statements = expandStatements(user.statements, user, 'mysql');
      if (statements.length === 0) throw noCreationStatements(settings.name);
      const what = `creating user "${user.username}"`;
      await withConnection(what, [user.password], async (c) => {
        try {
          await run(c, statements);
        } catch (err) {
          const rollback = user.rollbackStatements.length > 0 ? user.rollbackStatements : [DEFAULT_ROLLBACK];
          const undo = await run(c, expandStatements(rollback, user, 'mysql')).then(
            () => '',
            (e: unknown) => `; rolling back also failed: ${reasonOf(e)}`,
          );
          const cause = statementFailed(endpoint, what, err, [...adminSecrets, user.password]);
          throw new DatabaseError(redact(cause.message + undo, [...adminSecrets, user.password]), cause.unreachable);
        }
      });
    },

    renewUser: async (user) => {
      // Vault's plugin changes nothing on renewal unless the role says how: MySQL users do not expire.
      if (user.statements.length === 0) return;
      await withConnection(`renewing user "${user.username}"`, [], (c) =>
        run(c, expandStatements(user.statements, user, 'mysql')),
      );
    },

    revokeUser: (user) =>
      withConnection(`revoking user "${user.username}"`, [], async (c) => {
        // The default statements name 'user'@'%'; a role's own may name any host.
        const custom = user.statements.length > 0;
        const host = custom ? undefined : '%';
        if (!(await userExists(c, user.username, host))) return;
        try {
          await run(c, expandStatements(custom ? user.statements : DEFAULT_REVOKE, user, 'mysql'));
        } catch (err) {
          // A statement may have failed because an earlier one already removed the user: that is success.
          if (await userExists(c, user.username, host)) throw err;
        }
      }),

    setPassword: (user) =>
      withConnection(`setting the password of "${user.username}"`, [user.password], async (c) => {
        const entries = user.statements.length > 0 ? user.statements : [DEFAULT_SET_PASSWORD];
        await run(c, expandStatements(entries, user, 'mysql'));
      }),

    close: () => pool.end(),
  };
}

/**
 * connection_url as Vault documents it, a Go MySQL DSN (`{{username}}:{{password}}@tcp(HOST:3306)/DB?tls=true`),
 * or a mysql:// URL. It is parsed before {{username}} and {{password}} are filled in, so that no character of a
 * password can change how it parses.
 */
function parseConnectionUrl(settings: ConnectionSettings): {
  options: mysql.PoolOptions;
  endpoint: Endpoint;
} {
  const fill = (s: string) =>
    s
      .replace(/\{\{\s*username\s*\}\}/g, () => settings.username)
      .replace(/\{\{\s*password\s*\}\}/g, () => settings.password);
  const parsed = /^mysql:\/\//i.test(settings.connectionUrl)
    ? parseUrl(settings.connectionUrl)
    : parseDsn(settings.connectionUrl);
  if (!parsed)
    throw new DatabaseError(
      `connection "${settings.name}": connection_url must be a DSN like {{username}}:{{password}}@tcp(HOST:3306)/ ` +
        `or a URL like mysql://{{username}}:{{password}}@HOST:3306/`,
    );
  const options: mysql.PoolOptions = {
    user: parsed.user ? fill(parsed.user) : settings.username,
    password: parsed.user ? fill(parsed.password) : settings.password,
    database: parsed.database || undefined,
  };
  if (parsed.socket) options.socketPath = parsed.socket;
  else Object.assign(options, { host: parsed.host, port: parsed.port });
  const tls = parsed.params.get('tls') ?? parsed.params.get('ssl');
  if (tls === 'true' || tls === 'skip-verify') options.ssl = { rejectUnauthorized: tls === 'true' };
  const address = parsed.socket ?? `${parsed.host}:${parsed.port}`;
  return { options, endpoint: { name: settings.name, address } };
}

interface Parsed {
  user: string;
  password: string;
  host: string;
  port: number;
  socket?: string;
  database: string;
  params: URLSearchParams;
}

function parseUrl(text: string): Parsed | undefined {
  try {
    const url = new URL(text);
    const [user, password] = [url.username, url.password].map(decodeURIComponent) as [string, string];
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    return { user, password, host, port: Number(url.port || 3306), database, params: url.searchParams };
  } catch {
    return undefined;
  }
}

/** Go's DSN: [user[:password]@][net[(addr)]]/dbname[?params]; the last '@' ends the credentials, as in Go. */
function parseDsn(text: string): Parsed | undefined {
  const at = text.lastIndexOf('@');
  const credentials = at >= 0 ? text.slice(0, at) : '';
  const m = /^(?:(tcp|unix)(?:\(([^)]*)\))?)?\/([^?]*)(?:\?(.*))?$/.exec(text.slice(at + 1));
  if (!m) return undefined;
  const [, net = 'tcp', addr = '', database = '', query = ''] = m;
  const colon = credentials.indexOf(':');
  const user = colon >= 0 ? credentials.slice(0, colon) : credentials;
  const password = colon >= 0 ? credentials.slice(colon + 1) : '';
  const params = new URLSearchParams(query);
  if (net === 'unix') return { user, password, host: '', port: 0, socket: addr || '/tmp/mysql.sock', database, params };
  const hostPort = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(addr || '127.0.0.1:3306');
  if (!hostPort) return undefined;
  return { user, password, host: hostPort[1] || '127.0.0.1', port: Number(hostPort[2] ?? 3306), database, params };
}

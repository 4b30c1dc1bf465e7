/**
 * postgresql-database-plugin: Vault's PostgreSQL plugin over a `pg` pool. Creation, renewal and rotation run in
 * one transaction each; the default revocation removes what it can and then drops the role.
 */
import pg from 'pg';
import { DatabaseError, type ConnectionSettings, type DatabaseDriver } from './driver.js';
import { noCreationStatements, statementFailed, unreachable, type Endpoint } from './redact.js';
import { expandStatements } from './statements.js';

// Vault's, so that names look the same as Vault's and fit PostgreSQL's 63-byte identifiers.
const DEFAULT_USERNAME_TEMPLATE =
  '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}';
const CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_RENEW = `ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`;
const MAX_ATTEMPTS = 10;

/**
 * Concurrent GRANTs or REVOKEs on one table collide in PostgreSQL's catalog ("tuple concurrently updated"), as do
 * serialization failures and deadlocks. The transaction was rolled back whole, so running it again is safe.
 */
function isConcurrentCatalogUpdate(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '40001' || e.code === '40P01' || /tuple concurrently (updated|deleted)/.test(e.message ?? '');
}

const DEFAULT_SET_PASSWORD = `ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`;

export function postgresDriver(settings: ConnectionSettings): DatabaseDriver {
  const { connectionString, endpoint, urlPassword } = parseUrl(settings);
  const adminSecrets = [settings.password, urlPassword];
  const pool = new pg.Pool({
    connectionString,
    max: Math.max(1, settings.maxOpenConnections),
    maxLifetimeSeconds: settings.maxConnectionLifetime,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    allowExitOnIdle: true,
  });
  // An idle connection that dies (server restart) is reported here; without a listener it would end the process.
  pool.on('error', () => {});

  /** Runs `fn` on one connection; `what` and `secrets` shape the error if a statement fails. */
  async function withClient<T>(what: string, secrets: string[], fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const all = [...adminSecrets, ...secrets];
    let client: pg.PoolClient;
    const started = Date.now();
    try {
      client = await pool.connect();
    } catch (err) {
      // pg words its own connect timeout as "Connection terminated unexpectedly", which reads like a crash.
      const timedOut = Date.now() - started >= CONNECT_TIMEOUT_MS - 100;
      throw unreachable(endpoint, timedOut ? `no answer within ${CONNECT_TIMEOUT_MS / 1000} s` : err, all);
    }
    // A checked-out client has no pool listener: the same protection while we hold it.
    const ignore = () => {};
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      broken = err as Error;
      throw statementFailed(endpoint, what, err, all);
    } finally {
      client.off('error', ignore);
      // After a failure the connection may be mid-transaction or dead: drop it rather than reuse it.
      client.release(broken);
    }
  }

  async function inTransaction(c: pg.PoolClient, statements: string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await c.query('BEGIN');
      try {
        for (const s of statements) await c.query(s);
        await c.query('COMMIT');
        return;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        if (attempt >= MAX_ATTEMPTS || !isConcurrentCatalogUpdate(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  }

  const roleExists = async (c: pg.PoolClient, name: string) =>
    (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount !== 0;

  return {
    plugin: 'postgresql-database-plugin',
    defaultUsernameTemplate: DEFAULT_USERNAME_TEMPLATE,
    maxUsernameLength: 63,

    verify: () => withClient('verifying the connection', [], async (c) => void (await c.query('SELECT 1'))),

    newUser: async (user) => {
      const statements = expandStatements(user.statements, user, 'postgres');
      if (statements.length === 0) throw noCreationStatements(settings.name);
      await withClient(`creating user "${user.username}"`, [user.password], (c) => inTransaction(c, statements));
    },

    renewUser: (user) =>
      withClient(`renewing user "${user.username}"`, [], async (c) => {
        const entries = user.statements.length > 0 ? user.statements : [DEFAULT_RENEW];
        await inTransaction(c, expandStatements(entries, user, 'postgres'));
      }),

    revokeUser: (user) =>
      withClient(`revoking user "${user.username}"`, [], async (c) => {
        if (user.statements.length === 0) return defaultRevoke(c, user.username);
        try {
          await inTransaction(c, expandStatements(user.statements, user, 'postgres'));
        } catch (err) {
          // The statements may refer to a role that is already gone; that is the state revocation wants.
          if (!(await roleExists(c, user.username))) return;
          throw err;
        }
      }),

    setPassword: (user) =>
      withClient(`setting the password of "${user.username}"`, [user.password], async (c) => {
        const entries = user.statements.length > 0 ? user.statements : [DEFAULT_SET_PASSWORD];
        await inTransaction(c, expandStatements(entries, user, 'postgres'));
      }),

    close: () => pool.end(),
  };

  /**
   * As Vault's plugin: revoke privileges schema by schema and CONNECT on the database, then drop the role. Each
   * step on its own (no transaction), so that a failing step still leaves the others done. We also hand what the
   * role owns to the admin and drop its remaining grants (REASSIGN/DROP OWNED), which lets DROP ROLE succeed for a
   * role that created objects or holds default privileges; an admin not allowed to do that still gets Vault's result.
   */
  async function defaultRevoke(c: pg.PoolClient, name: string): Promise<void> {
    if (!(await roleExists(c, name))) return;
    const role = ident(name);
    const schemas = await c.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'`,
    );
    const db = (await c.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db ?? '';
    const steps = schemas.rows.flatMap(({ nspname }) => [
      `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA ${ident(nspname)} FROM ${role}`,
      `REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA ${ident(nspname)} FROM ${role}`,
      `REVOKE ALL PRIVILEGES ON ALL FUNCTIONS IN SCHEMA ${ident(nspname)} FROM ${role}`,
      `REVOKE USAGE ON SCHEMA ${ident(nspname)} FROM ${role}`,
    ]);
    steps.push(`REVOKE CONNECT ON DATABASE ${ident(db)} FROM ${role}`);
    steps.push(`REASSIGN OWNED BY ${role} TO CURRENT_USER`, `DROP OWNED BY ${role}`);
    // A REVOKE that collided with a concurrent one on the same table left a grant behind and DROP ROLE fails;
    // running the steps again clears it.
    for (let attempt = 1; ; attempt++) {
      for (const s of steps) await c.query(s).catch(() => {});
      try {
        await c.query(`DROP ROLE IF EXISTS ${role}`);
        return;
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  }
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * connection_url is a postgres:// URL whose {{username}} and {{password}} come from the config's fields (encoded,
 * since they sit in a URL). A URL with no user gets the fields as its credentials.
 */
function parseUrl(settings: ConnectionSettings): { connectionString: string; endpoint: Endpoint; urlPassword: string } {
  // Functions, not strings, as replacements: a '$&' in a password must stay as it is.
  const filled = settings.connectionUrl
    .replace(/\{\{\s*username\s*\}\}/g, () => encodeURIComponent(settings.username))
    .replace(/\{\{\s*password\s*\}\}/g, () => encodeURIComponent(settings.password));
  let url: URL;
  try {
    url = new URL(filled);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new DatabaseError(
      `connection "${settings.name}": connection_url must be a URL like ` +
        `postgresql://{{username}}:{{password}}@HOST:5432/DATABASE`,
    );
  if (!url.username && settings.username) {
    url.username = encodeURIComponent(settings.username);
    url.password = encodeURIComponent(settings.password);
  }
  const socketDir = url.searchParams.get('host');
  const address = socketDir ?? `${url.hostname || 'localhost'}:${url.port || 5432}`;
  return {
    connectionString: url.toString(),
    endpoint: { name: settings.name, address },
    urlPassword: decode(url.password),
  };
}

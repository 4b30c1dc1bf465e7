/**
 * How the PostgreSQL storage reaches its server: client settings from the connection URL, pooled and dedicated
 * clients that cannot crash the process, and errors that say where the server is without ever showing the URL's
 * password.
 */
import pg from 'pg';

const CONNECT_TIMEOUT_MS = 5000;

export interface Connection {
  /** For pg.Pool and pg.Client. */
  config: pg.ClientConfig;
  /** HOST:PORT or a socket directory: what error messages name instead of the URL. */
  endpoint: string;
  /** Strings that must never appear in a message (the password, as given and as percent-encoded). */
  secrets: string[];
}

export function parseConnectionUrl(connectionUrl: string): Connection {
  let url: URL;
  try {
    url = new URL(connectionUrl);
  } catch {
    // Not echoed: a malformed URL may still carry a password.
    throw new Error('postgres storage: connection_url is not a URL like postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`postgres storage: connection_url must start with postgres:// (not ${url.protocol}//)`);
  }
  const socketDir = url.searchParams.get('host');
  const endpoint = socketDir?.startsWith('/')
    ? `${socketDir}:${url.port || '5432'}`
    : `${url.hostname || 'localhost'}:${url.port || '5432'}`;
  const passwords = [url.password, url.searchParams.get('password') ?? ''];
  const secrets = passwords.flatMap((p) => [p, safeDecode(p), encodeURIComponent(safeDecode(p))]).filter(Boolean);
  return {
    config: {
      connectionString: connectionUrl,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // The kernel's default (2 h) would let a dead peer hold a LISTEN or a leader's lock for hours.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    },
    endpoint,
    secrets: [...new Set(secrets)].sort((a, b) => b.length - a.length),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A client outside the pool (LISTEN, the leader's lock): its 'error' event is always handled, and a query that gets
 * no answer within queryTimeoutMs fails, since a half-open TCP connection would otherwise hang it for minutes.
 */
export function dedicatedClient(
  conn: Connection,
  applicationName: string,
  queryTimeoutMs: number,
  onGone: (err?: Error) => void,
): pg.Client {
  const client = new pg.Client({
    ...conn.config,
    application_name: applicationName.slice(0, 63),
    query_timeout: queryTimeoutMs,
  });
  client.on('error', onGone);
  client.on('end', () => onGone());
  return client;
}

/**
 * Runs fn on a pooled connection; errors name the server, never the URL's password. A connection found dead when
 * used (the server restarted or cut it while it sat idle in the pool) is replaced, and fn runs again: a read, or a
 * statement that sets the same final state when run twice. Every idle connection of the pool may have been cut at
 * once, and a dead one is only found by using it, so as many retries as the pool holds connections, plus one for a
 * fresh connection.
 *
 * `once`: fn is a write that must not run twice (a batch of changes with checks of what its callers read). A lost
 * connection may have cut it after its commit: sent again, its checks fail on its own changes (callers told of a
 * conflict for writes that were applied, and making them again), and it undoes what another node committed in
 * between. It fails instead, saying that it may have been applied. A connection PostgreSQL ended while it sat in
 * the pool (a restart) is dropped by the pool as soon as the server's notice of it arrives; a write sent on one in
 * the moment before fails so too, as do the writes in flight when the server goes.
 */
export async function withClient<T>(
  pool: pg.Pool,
  conn: Connection,
  fn: (c: pg.PoolClient) => Promise<T>,
  opts: { once?: boolean } = {},
): Promise<T> {
  const retries = pool.totalCount + 1;
  for (let tries = 1; ; tries++) {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw cannotConnect(conn, err);
    }
    try {
      return await holding(client, fn);
    } catch (err) {
      if (!isConnectionLost(err)) throw queryFailed(conn, err);
      if (opts.once && !notApplied(err)) throw outcomeUnknown(conn, err);
      if (tries <= retries) continue;
      throw queryFailed(conn, err);
    }
  }
}

/**
 * A lost connection that shows the statement was almost surely not committed: the server ended the backend (its
 * FATAL came instead of the answer: a statement it interrupts is rolled back; only an end that falls between the
 * commit and the answer's last message would be missed, a window of microseconds), or the socket was found closed
 * when the statement was written. The usual case: a pooled connection that a restart of PostgreSQL cut, whose first
 * write after the restart would otherwise fail. 57P05 ends only an idle session (idle_session_timeout), one that
 * the pool handed out as the server closed it.
 */
function notApplied(err: unknown): boolean {
  const { code } = (err ?? {}) as { code?: unknown };
  return code === '57P01' || code === '57P02' || code === '57P05' || code === 'EPIPE';
}

/** A write whose connection was lost after it was sent: PostgreSQL may have committed it, or not. */
function outcomeUnknown(conn: Connection, err: unknown): Error {
  return wrap(
    conn,
    `the connection was lost while a write was on its way: it may or may not have been applied (${reasonOf(err)})`,
    err,
  );
}

async function holding<T>(client: pg.PoolClient, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  // A checked-out client has no pool listener; an error event while we hold it must not crash the process.
  const ignore = () => {};
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (err) {
    // A statement the server refused leaves the connection usable; anything else (timeout, socket) may not.
    if (!(err instanceof pg.DatabaseError)) broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.off('error', ignore);
    client.release(broken);
  }
}

/** The connection, not the statement, failed: terminated by an administrator or a shutdown, or its socket closed. */
function isConnectionLost(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (code === '57P01' || code === '57P02' || code === '57P05' || code === 'ECONNRESET' || code === 'EPIPE')
    return true;
  return typeof message === 'string' && /^Connection terminated unexpectedly/.test(message);
}

/** Connects, or throws an error naming the endpoint; the client is ended either way on failure. */
export async function connectClient(conn: Connection, client: pg.Client): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    client.end().catch(() => {});
    throw cannotConnect(conn, err);
  }
}

function cannotConnect(conn: Connection, err: unknown): Error {
  return wrap(conn, `cannot connect: ${reasonOf(err)}`, err);
}

export function queryFailed(conn: Connection, err: unknown): Error {
  return wrap(conn, reasonOf(err), err);
}

function wrap(conn: Connection, message: string, err: unknown): Error {
  const wrapped = new Error(redact(`postgres storage at ${conn.endpoint}: ${message}`, conn.secrets));
  // The SQLSTATE lets callers tell a constraint from a lost connection; the original error is not kept as cause
  // because nothing guarantees its fields are free of the connection's secrets.
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') Object.assign(wrapped, { code });
  return wrapped;
}

function redact(message: string, secrets: string[]): string {
  return secrets.reduce((msg, s) => msg.split(s).join('[redacted]'), message);
}

/**
 * Node reports a refused connection to a name with several addresses (localhost) as an AggregateError with an
 * empty message; its inner errors say what happened. pg words its connect timeout as a terminated connection.
 */
function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (/Connection terminated due to connection timeout|timeout exceeded when trying to connect/i.test(err.message)) {
    return `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
  }
  if (err.message) return err.message;
  const inner = (err as { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length > 0) return inner.map(reasonOf).join('; ');
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err.name;
}

/** Exponential back-off with jitter, so that nodes cut off together do not reconnect in lockstep. */
export function backoff(failures: number, maxMs = 5000): number {
  const ms = Math.min(maxMs, 100 * 2 ** Math.min(failures, 16));
  return Math.round(ms * (0.5 + Math.random() / 2));
}

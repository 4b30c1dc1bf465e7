/**
 * The port between the database secrets engine and one kind of database. A driver holds a connection pool for
 * one `config/:name` entry and runs the engine's statements on it. It never logs, and every error it throws is a
 * DatabaseError whose message names the connection and holds no password.
 */

export type PluginName = 'postgresql-database-plugin' | 'mysql-database-plugin';

export interface ConnectionSettings {
  /** The config entry's name, used in error messages. */
  name: string;
  /** A URL or DSN that may hold {{username}} and {{password}}, filled from the fields below. */
  connectionUrl: string;
  username: string;
  password: string;
  maxOpenConnections: number;
  /** Seconds; 0 means no limit. */
  maxConnectionLifetime: number;
}

export interface NewUser {
  /** Creation statements as the role gives them; each entry may hold several statements separated by ';'. */
  statements: string[];
  /** Run when a creation statement fails, before the error is thrown (empty: the driver's own clean-up). */
  rollbackStatements: string[];
  username: string;
  password: string;
  expiration: Date;
}

export interface DatabaseDriver {
  readonly plugin: PluginName;
  /** The username template used when a role has none, and the longest name the database accepts. */
  readonly defaultUsernameTemplate: string;
  readonly maxUsernameLength: number;
  /** Opens a connection and runs a trivial query. */
  verify(): Promise<void>;
  /** Runs creation statements in a transaction where the database allows it; leaves nothing behind on failure. */
  newUser(user: NewUser): Promise<void>;
  /** Runs renew statements; without any, the driver's default (PostgreSQL moves VALID UNTIL, MySQL does nothing). */
  renewUser(user: { statements: string[]; username: string; expiration: Date }): Promise<void>;
  /** Runs revocation statements, or the driver's default drop. A user that no longer exists is not an error. */
  revokeUser(user: { statements: string[]; username: string }): Promise<void>;
  /** Sets a user's password: rotation statements, or the driver's default ALTER. Used for static roles and rotate-root. */
  setPassword(user: { statements: string[]; username: string; password: string }): Promise<void>;
  /** Closes the pool; the driver is not used afterwards. */
  close(): Promise<void>;
}

/** A failure the client may see: its message names the connection and never holds a password. */
export class DatabaseError extends Error {
  constructor(
    message: string,
    /** True when the database could not be reached at all (as opposed to a statement that failed). */
    readonly unreachable = false,
  ) {
    super(message);
    this.name = 'DatabaseError';
  }
}

/** What the database engine stores, each under its own key in the mount's (barrier-encrypted) storage. */

/** config/<name>: one database connection. */
export interface ConnectionConfig {
  name: string;
  plugin_name: string;
  connection_url: string;
  username: string;
  /** Cofre's own password for the database; after rotate-root, known to no one else. */
  password: string;
  /**
   * A new root password that rotate-root set or is setting. Written before the database is changed, so a crash
   * in between leaves the new password on record rather than lose it.
   */
  pending_password?: string;
  allowed_roles: string[];
  root_rotation_statements: string[];
  password_policy: string;
  username_template: string;
  verify_connection: boolean;
  max_open_connections: number;
  max_connection_lifetime: number;
}

/** roles/<name>: a dynamic role. TTLs in seconds (0 = the mount's). */
export interface DynamicRole {
  db_name: string;
  creation_statements: string[];
  revocation_statements: string[];
  rollback_statements: string[];
  renew_statements: string[];
  default_ttl: number;
  max_ttl: number;
  username_template: string;
}

/** static-roles/<name>: an existing database user whose password Cofre rotates. Times are unix ms. */
export interface StaticRole {
  db_name: string;
  username: string;
  rotation_statements: string[];
  /** Seconds between rotations; 0 when a schedule is used. */
  rotation_period: number;
  /** A cron expression; "" when a period is used. */
  rotation_schedule: string;
  password: string;
  /** As pending_password above: set before the database is changed. */
  pending_password?: string;
  last_vault_rotation: number;
  next_rotation: number;
  /** The last failed rotation's message, shown on read; "" after a success. */
  last_rotation_error: string;
}

export const CONFIG_PREFIX = 'config/';
export const ROLE_PREFIX = 'role/';
export const STATIC_ROLE_PREFIX = 'static-role/';

import mysql from 'mysql2/promise';
import pg from 'pg';
import { startMariadb, startPostgres, type TestDatabase } from '../scripts/test-databases.js';

/** What the database engine's tests need to know about one kind of database, so one suite covers both. */
export interface Flavor {
  name: string;
  plugin: string;
  start(): Promise<TestDatabase>;
  /** connection_url for Cofre, with {{username}} and {{password}} templated. */
  connectionUrl(db: TestDatabase): string;
  /** Run as the test's administrator: tables the roles grant on, and the user Cofre connects as. */
  setup(adminUser: string, adminPassword: string): string[];
  /** Creation statements granting SELECT on `allowed` and nothing else. */
  creation: string[];
  allowedSelect: string;
  forbiddenSelect: string;
  allowedInsert: string;
  /** Logs in as user over TCP and runs sql; rejects when the login or the statement is refused. */
  runAs(db: TestDatabase, user: string, password: string, sql: string): Promise<void>;
  userExists(db: TestDatabase, user: string): Promise<boolean>;
  /** Users whose names look like the engine's dynamic ones (v-…). */
  dynamicUsers(db: TestDatabase): Promise<string[]>;
  createUser(user: string, password: string): string[];
  /** A statement whose error message would quote the password, if the driver did not redact it. */
  leakyStatement: string;
  /** Statements that set {{name}}'s password {{password}} after a pause of `seconds`: a rotation held open. */
  slowSetPassword(seconds: number): string[];
}

export const postgres: Flavor = {
  name: 'PostgreSQL',
  plugin: 'postgresql-database-plugin',
  start: startPostgres,
  connectionUrl: (db) => `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres?sslmode=disable`,
  setup: (user, password) => [
    'CREATE TABLE IF NOT EXISTS allowed (x int)',
    'CREATE TABLE IF NOT EXISTS forbidden (x int)',
    'INSERT INTO allowed VALUES (1)',
    `CREATE ROLE "${user}" WITH LOGIN SUPERUSER PASSWORD '${password}'`,
  ],
  creation: [
    `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
    'GRANT SELECT ON allowed TO "{{name}}";',
  ],
  allowedSelect: 'SELECT x FROM allowed',
  forbiddenSelect: 'SELECT x FROM forbidden',
  allowedInsert: 'INSERT INTO allowed VALUES (2)',
  async runAs(db, user, password, sql) {
    const client = new pg.Client({ host: db.host, port: db.port, user, password, database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  },
  userExists: async (db, user) => (await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).length > 0,
  dynamicUsers: async (db) =>
    (await db.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'")).map((r) => String(r.rolname)),
  createUser: (user, password) => [`CREATE ROLE "${user}" WITH LOGIN PASSWORD '${password}'`],
  leakyStatement: "SELECT '{{password}}'::int",
  slowSetPassword: (seconds) => [`SELECT pg_sleep(${seconds})`, `ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`],
};

export const mariadb: Flavor = {
  name: 'MariaDB',
  plugin: 'mysql-database-plugin',
  start: startMariadb,
  connectionUrl: (db) => `{{username}}:{{password}}@tcp(${db.host}:${db.port})/`,
  setup: (user, password) => [
    'CREATE DATABASE IF NOT EXISTS app',
    'CREATE TABLE IF NOT EXISTS app.allowed (x int)',
    'CREATE TABLE IF NOT EXISTS app.forbidden (x int)',
    'INSERT INTO app.allowed VALUES (1)',
    `CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`,
    `GRANT ALL PRIVILEGES ON *.* TO '${user}'@'%' WITH GRANT OPTION`,
  ],
  creation: [
    "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
    "GRANT SELECT ON app.allowed TO '{{name}}'@'%';",
  ],
  allowedSelect: 'SELECT x FROM app.allowed',
  forbiddenSelect: 'SELECT x FROM app.forbidden',
  allowedInsert: 'INSERT INTO app.allowed VALUES (2)',
  async runAs(db, user, password, sql) {
    const conn = await mysql.createConnection({ host: db.host, port: db.port, user, password });
    try {
      await conn.query(sql);
    } finally {
      await conn.end();
    }
  },
  userExists: async (db, user) => (await db.query('SELECT 1 FROM mysql.user WHERE User = ?', [user])).length > 0,
  dynamicUsers: async (db) =>
    (await db.query("SELECT User FROM mysql.user WHERE User LIKE 'v-%'")).map((r) => String(r.User)),
  createUser: (user, password) => [`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`],
  leakyStatement: 'SELECT * FROM mysql.`{{password}}`',
  slowSetPassword: (seconds) => [`DO SLEEP(${seconds})`, `ALTER USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`],
};

/** Whether the user can log in to the database with this password now. */
export function canLogIn(flavor: Flavor, db: TestDatabase, user: string, password: string): Promise<boolean> {
  return flavor.runAs(db, user, password, 'SELECT 1').then(
    () => true,
    () => false,
  );
}

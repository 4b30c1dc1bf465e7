// The database secrets engine's drivers against real PostgreSQL and MariaDB servers (scripts/test-databases.ts):
// users are created, used, re-keyed and dropped for real, and logins are checked over TCP with passwords.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { startMariadb, startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { DatabaseError, type ConnectionSettings, type DatabaseDriver } from '../src/engines/database/drivers/driver.js';
import { createDriver } from '../src/engines/database/drivers/index.js';
import { renderUsername } from '../src/engines/database/drivers/username-template.js';

/** What differs between the two databases; the tests below are the same for both. */
interface Target {
  plugin: string;
  start(): Promise<TestDatabase>;
  connectionUrl(db: TestDatabase): string;
  setup: string[];
  /** Creates the user and lets it read `allowed` (not `secret`). */
  creation: string;
  /** Creates the user, then fails with an error whose text holds the password. */
  failingCreation: string;
  /** Runs `sql` as USER logged in with PASSWORD over TCP. */
  login(db: TestDatabase, user: string, password: string, sql: string): Promise<unknown[]>;
  userExists(db: TestDatabase, name: string): Promise<boolean>;
}

const targets: Target[] = [
  {
    plugin: 'postgresql-database-plugin',
    start: startPostgres,
    connectionUrl: (db) => `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres?sslmode=disable`,
    setup: ['CREATE TABLE allowed (x int)', 'CREATE TABLE secret (x int)', 'INSERT INTO allowed VALUES (42)'],
    creation: `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
               GRANT SELECT ON allowed TO "{{name}}";`,
    failingCreation: `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; SELECT '{{password}}'::int`,
    async login(db, user, password, sql) {
      const client = new pg.Client({ host: db.host, port: db.port, user, password, database: 'postgres' });
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    },
    userExists: async (db, name) => (await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).length > 0,
  },
  {
    plugin: 'mysql-database-plugin',
    start: startMariadb,
    connectionUrl: (db) => `{{username}}:{{password}}@tcp(${db.host}:${db.port})/`,
    setup: [
      'CREATE DATABASE app',
      'CREATE TABLE app.allowed (x int)',
      'CREATE TABLE app.secret (x int)',
      'INSERT INTO app.allowed VALUES (42)',
    ],
    creation: `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON app.allowed TO '{{name}}'@'%';`,
    failingCreation: `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON app.\`{{password}}\` TO '{{name}}'@'%'`,
    async login(db, user, password, sql) {
      const conn = await mysql.createConnection({ host: db.host, port: db.port, user, password, database: 'app' });
      try {
        return (await conn.query(sql))[0] as unknown[];
      } finally {
        await conn.end();
      }
    },
    userExists: async (db, name) => (await db.query('SELECT 1 FROM mysql.user WHERE User = ?', [name])).length > 0,
  },
];

const newPassword = () => `A1a-${randomBytes(12).toString('hex')}`;
const inAnHour = () => new Date(Date.now() + 3600_000);

function settings(target: Target, db: TestDatabase, over: Partial<ConnectionSettings> = {}): ConnectionSettings {
  const base = { name: 'conn-under-test', connectionUrl: target.connectionUrl(db), username: db.user };
  return { ...base, password: db.password, maxOpenConnections: 4, maxConnectionLifetime: 0, ...over };
}

/** Asserts a DatabaseError that names the connection and holds none of `secrets`. */
function assertCleanError(err: unknown, unreachable: boolean, secrets: string[]): DatabaseError {
  assert.ok(err instanceof DatabaseError, `a DatabaseError, got ${String(err)}`);
  assert.equal(err.unreachable, unreachable, err.message);
  assert.match(err.message, /^connection "conn-under-test": /);
  for (const s of secrets) assert.ok(!err.message.includes(s), `the message holds a secret: ${err.message}`);
  return err;
}

// One server of each kind for the whole file (a few seconds to start), shared by the suites below.
const servers = new Map<Target, TestDatabase>();
before(async () => {
  const started = await Promise.allSettled(targets.map((t) => t.start()));
  started.forEach((r, i) => r.status === 'fulfilled' && servers.set(targets[i] as Target, r.value));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  for (const [target, db] of servers) for (const sql of target.setup) await db.query(sql);
});
after(() => Promise.all([...servers.values()].map((db) => db.stop())));

/** The shared server of `target` and a driver on it, closed after the suite. */
function useDriver(target: Target): { db(): TestDatabase; driver(): DatabaseDriver } {
  let driver: DatabaseDriver | undefined;
  const db = () => servers.get(target) as TestDatabase;
  before(() => void (driver = createDriver(target.plugin, settings(target, db()))));
  after(() => driver?.close());
  return { db, driver: () => driver as DatabaseDriver };
}

for (const target of targets) {
  describe(`${target.plugin} against a real server`, () => {
    let db: TestDatabase;
    let driver: DatabaseDriver;
    const shared = useDriver(target);
    before(() => {
      db = shared.db();
      driver = shared.driver();
    });

    const username = (role = 'readonly') =>
      renderUsername(
        driver.defaultUsernameTemplate,
        { roleName: role, displayName: 'token-ci' },
        driver.maxUsernameLength,
      );
    const create = async () => {
      const user = { username: username(), password: newPassword() };
      await driver.newUser({ ...user, statements: [target.creation], rollbackStatements: [], expiration: inAnHour() });
      return user;
    };

    it('verifies its connection', async () => {
      await driver.verify();
    });

    it('creates a user that logs in with its password and reads only what it was granted', async () => {
      const u = await create();
      assert.ok(u.username.startsWith('v-token-ci-readonly-'), u.username);
      assert.deepEqual(await target.login(db, u.username, u.password, 'SELECT x FROM allowed'), [{ x: 42 }]);
      await assert.rejects(target.login(db, u.username, u.password, 'SELECT x FROM secret'), /denied/);
      await assert.rejects(target.login(db, u.username, 'wrong', 'SELECT 1'), /password|denied/);
    });

    it('revokes: the login fails and the user is gone; revoking again is fine', async () => {
      const u = await create();
      await driver.revokeUser({ statements: [], username: u.username });
      assert.equal(await target.userExists(db, u.username), false);
      await assert.rejects(target.login(db, u.username, u.password, 'SELECT 1'));
      await driver.revokeUser({ statements: [], username: u.username });
      await driver.revokeUser({ statements: [], username: 'v-never-existed' });
    });

    it('sets a new password: the old one stops working', async () => {
      const u = await create();
      const password = newPassword();
      await driver.setPassword({ statements: [], username: u.username, password });
      await assert.rejects(target.login(db, u.username, u.password, 'SELECT 1'));
      assert.equal((await target.login(db, u.username, password, 'SELECT 1 AS one')).length, 1);
    });

    it('a failing creation leaves no user behind and does not echo the password', async () => {
      const user = { username: username('broken'), password: newPassword() };
      const err = await driver
        .newUser({ ...user, statements: [target.failingCreation], rollbackStatements: [], expiration: inAnHour() })
        .then(
          () => assert.fail('creation should fail'),
          (e: unknown) => e,
        );
      const clean = assertCleanError(err, false, [user.password, db.password]);
      assert.match(clean.message, /creating user "v-token-ci-broken-.*\[redacted\]/);
      assert.equal(await target.userExists(db, user.username), false);
    });

    it('reports a server nobody listens on as unreachable, without the password', async () => {
      const dead = createDriver(target.plugin, settings(target, { ...db, port: 1 }));
      try {
        const err = await dead.verify().then(
          () => assert.fail('verify should fail'),
          (e: unknown) => e,
        );
        assertCleanError(err, true, [db.password]);
        assert.match((err as Error).message, /cannot reach the database at 127\.0\.0\.1:1: .*ECONNREFUSED/);
      } finally {
        await dead.close();
      }
    });

    it('reports a rejected admin login as such, without either password', async () => {
      const wrong = newPassword();
      const bad = createDriver(target.plugin, settings(target, db, { password: wrong }));
      try {
        const err = await bad.verify().then(
          () => assert.fail('verify should fail'),
          (e: unknown) => e,
        );
        assertCleanError(err, true, [wrong, db.password]);
        assert.match(
          (err as Error).message,
          /the database refused the login at [^:]+:\d+: .*(password authentication failed|Access denied)/,
        );
      } finally {
        await bad.close();
      }
    });
  });
}

describe('postgresql-database-plugin specifics', () => {
  const target = targets[0] as Target;
  let db: TestDatabase;
  let driver: DatabaseDriver;
  const shared = useDriver(target);
  before(() => {
    db = shared.db();
    driver = shared.driver();
  });
  const validUntil = async (name: string) =>
    (await db.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [name]))[0]?.rolvaliduntil as Date;

  it('renews by moving VALID UNTIL, as Vault does when the role gives no renew statements', async () => {
    const expiration = new Date(Math.floor(Date.now() / 1000) * 1000 + 600_000);
    const user = { username: 'v-renew', password: newPassword(), rollbackStatements: [] };
    const creation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`;
    await driver.newUser({ ...user, statements: [creation], expiration });
    assert.equal((await validUntil('v-renew')).getTime(), expiration.getTime());
    const later = new Date(expiration.getTime() + 3600_000);
    await driver.renewUser({ statements: [], username: 'v-renew', expiration: later });
    assert.equal((await validUntil('v-renew')).getTime(), later.getTime());
  });

  it('the default revocation drops a role that owns objects and holds default privileges', async () => {
    const name = 'v-owner';
    const password = newPassword();
    await db.query('CREATE SCHEMA app_owned');
    const creation = [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`,
      `GRANT USAGE, CREATE ON SCHEMA app_owned TO "{{name}}"`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA app_owned GRANT SELECT ON TABLES TO "{{name}}"`,
    ].join(';');
    await driver.newUser({
      username: name,
      password,
      statements: [creation],
      rollbackStatements: [],
      expiration: inAnHour(),
    });
    await target.login(db, name, password, 'CREATE TABLE app_owned.mine (x int)');
    await driver.revokeUser({ statements: [], username: name });
    assert.equal((await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).length, 0);
    const owner = await db.query(`SELECT tableowner FROM pg_tables WHERE tablename = 'mine'`);
    assert.deepEqual(owner, [{ tableowner: db.user }], 'its table now belongs to the admin');
  });

  it('runs a DO block whole and rolls the whole creation back when a statement fails', async () => {
    const block = `DO $$ BEGIN CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'; END $$;`;
    await driver.newUser({
      username: 'v-block',
      password: newPassword(),
      statements: [block],
      rollbackStatements: [],
      expiration: inAnHour(),
    });
    assert.equal((await db.query(`SELECT 1 FROM pg_roles WHERE rolname = 'v-block'`)).length, 1);
    const failing = [`CREATE ROLE "{{name}}"`, 'SELECT * FROM no_such_table'];
    await assert.rejects(
      driver.newUser({
        username: 'v-half',
        password: newPassword(),
        statements: failing,
        rollbackStatements: [],
        expiration: inAnHour(),
      }),
      /creating user "v-half": relation "no_such_table" does not exist/,
    );
    assert.equal((await db.query(`SELECT 1 FROM pg_roles WHERE rolname = 'v-half'`)).length, 0);
  });

  it('custom revocation statements for a role that is already gone succeed', async () => {
    await driver.revokeUser({
      statements: ['REVOKE ALL ON allowed FROM "{{name}}"; DROP ROLE "{{name}}"'],
      username: 'v-gone',
    });
  });
});

describe('mysql-database-plugin specifics', () => {
  const target = targets[1] as Target;
  let db: TestDatabase;
  let driver: DatabaseDriver;
  const shared = useDriver(target);
  before(() => {
    db = shared.db();
    driver = shared.driver();
  });

  it('accepts a mysql:// URL as well as a Go DSN, with a database', async () => {
    for (const connectionUrl of [
      `mysql://{{username}}:{{password}}@127.0.0.1:${db.port}/app`,
      `{{username}}:{{password}}@tcp(127.0.0.1:${db.port})/app?tls=false`,
    ]) {
      const driver = createDriver(target.plugin, settings(target, db, { connectionUrl }));
      await driver.verify();
      await driver.close();
    }
    assert.throws(
      () => createDriver(target.plugin, settings(target, db, { connectionUrl: 'nonsense' })),
      (e: unknown) => e instanceof DatabaseError && !e.message.includes(db.password),
    );
  });

  it("runs the role's rollback statements when a creation statement fails", async () => {
    await db.query(`CREATE USER 'v-rollback-marker'@'%'`);
    const user = { username: 'v-rb', password: newPassword(), expiration: inAnHour() };
    await assert.rejects(
      driver.newUser({
        ...user,
        statements: [
          `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`,
          `GRANT SELECT ON app.nope TO '{{name}}'@'%'`,
        ],
        rollbackStatements: [`DROP USER '{{name}}'@'%'; DROP USER 'v-rollback-marker'@'%'`],
      }),
      /creating user "v-rb": .*doesn't exist/,
    );
    const left = await db.query(`SELECT User FROM mysql.user WHERE User IN ('v-rb', 'v-rollback-marker')`);
    assert.deepEqual(left, []);
  });

  it('custom revocation statements for a user that is already gone succeed', async () => {
    await driver.revokeUser({ statements: [`DROP USER '{{name}}'@'%'`], username: 'v-gone' });
  });
});

describe('a server that accepts connections but never answers', () => {
  it('is reported unreachable after the connect timeout (5 s), by both drivers', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    try {
      await Promise.all(
        targets.map(async (target) => {
          const db = { ...(servers.get(target) as TestDatabase), host: '127.0.0.1', port };
          const driver = createDriver(target.plugin, settings(target, db));
          const err = await driver.verify().then(
            () => assert.fail('verify should fail'),
            (e: unknown) => e,
          );
          await driver.close();
          assertCleanError(err, true, [db.password]);
          assert.match((err as Error).message, /no answer within 5 s|ETIMEDOUT/);
        }),
      );
    } finally {
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });
});

describe('a server that dies under an open pool', () => {
  for (const target of targets) {
    it(`${target.plugin}: the process survives and the next call reports the database unreachable`, async () => {
      const db = await target.start();
      const driver = createDriver(target.plugin, settings(target, db, { maxOpenConnections: 2 }));
      try {
        await Promise.all([driver.verify(), driver.verify()]); // two idle pooled connections
        await db.stop();
        await new Promise((r) => setTimeout(r, 200)); // let the pool see its connections close
        const err = await driver.verify().then(
          () => assert.fail('verify should fail'),
          (e: unknown) => e,
        );
        assertCleanError(err, true, [db.password]);
      } finally {
        await driver.close();
        await db.stop();
      }
    });
  }
});

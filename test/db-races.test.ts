import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../scripts/test-databases.js';
import { canLogIn as canLogInAs, postgres as flavor } from './database-flavors.js';
import { type InProcessServer, startServer, until, writeOk } from './support.js';

const ADMIN = 'cofre_race_admin';
const ADMIN_PASSWORD = 'race-admin-pw-4e81b7';
/** Races are repeated this often, at spread-out moments: a race that hits one time in 20 is caught. */
const ROUNDS = 25;
/** Creation takes this long on the database (pg_sleep in the transaction), the window the races aim at. */
const CREATE_MS = 300;

/** When, in round `i`, the racing request starts after the creds request: from before to after the creation. */
const raceDelay = (i: number): number => Math.round(((i * 7) % ROUNDS) * ((CREATE_MS + 100) / ROUNDS));

/**
 * Races around dynamic and static database credentials, against a real PostgreSQL and a real server: a creds
 * request racing the disable of its mount or a seal, and a static role whose first rotation ends ambiguously.
 */
describe('database engine races', () => {
  let db: TestDatabase;
  let srv: InProcessServer;

  const api = () => srv.api;
  const write = (path: string, body: unknown = {}) => writeOk(api(), path, body);
  const canLogIn = (user: string, password: string) => canLogInAs(flavor, db, user, password);

  /** A database mount at `path` with a role "slow" whose creation holds its transaction open for CREATE_MS. */
  const mountSlowRole = async (path: string) => {
    await write(`sys/mounts/${path}`, { type: 'database' });
    await write(`${path}/config/pg`, {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    await write(`${path}/roles/slow`, {
      db_name: 'pg',
      creation_statements: [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
        `SELECT pg_sleep(${CREATE_MS / 1000})`,
      ],
      default_ttl: '1h',
    });
  };
  const leasesUnder = async (prefix: string): Promise<string[]> => {
    const res = await api().call('LIST', `sys/leases/lookup/${prefix}`);
    if (res.status === 404) return [];
    assert.equal(res.status, 200, res.text);
    return res.body.data.keys;
  };

  before(async () => {
    db = await flavor.start();
    for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
    await db?.stop();
  });

  it('a creds request racing the disable of its mount leaves neither a lease nor a user', async () => {
    const before = await flavor.dynamicUsers(db);
    for (let i = 0; i < ROUNDS; i++) {
      await mountSlowRole('race-a');
      const creds = api().call('GET', 'race-a/creds/slow');
      await sleep(raceDelay(i));
      const unmount = await api().call('DELETE', 'sys/mounts/race-a');
      assert.equal(unmount.status, 204, `round ${i}: ${unmount.text}`);
      const issued = await creds;
      // Issued before the unmount began (then revoked by it), or refused: either way nothing may be left.
      assert.ok(issued.status === 200 || issued.status >= 400, issued.text);
      assert.deepEqual(await leasesUnder('race-a/creds/slow/'), [], `round ${i}: a lease outlived its mount`);
      assert.deepEqual(await flavor.dynamicUsers(db), before, `round ${i}: a user outlived its mount`);
    }
  });

  it('a creds request racing a seal leaves no user without a lease', async () => {
    await mountSlowRole('race-b');
    const before = await flavor.dynamicUsers(db);
    for (let i = 0; i < ROUNDS; i++) {
      const creds = api().call('GET', 'race-b/creds/slow');
      await sleep(raceDelay(i));
      assert.equal((await api().call('PUT', 'sys/seal')).status, 204);
      await creds;
      for (const key of srv.keys.slice(0, 2)) await api().call('PUT', 'sys/unseal', { body: { key } });
      // Every user the race left must be under a lease: revoking the role's leases then leaves none.
      const revoked = await api().call('PUT', 'sys/leases/revoke-prefix/race-b/creds/slow');
      assert.equal(revoked.status, 204, revoked.text);
      assert.deepEqual(await flavor.dynamicUsers(db), before, `round ${i}: a user without a lease`);
    }
  });

  it('a creds request racing the revocation of its token leaves neither a lease nor a user', async () => {
    await mountSlowRole('race-d');
    await write('sys/policies/acl/race-d', { policy: 'path "race-d/creds/slow" { capabilities = ["read"] }' });
    const before = await flavor.dynamicUsers(db);
    for (let i = 0; i < ROUNDS; i++) {
      const child = await write('auth/token/create', { policies: ['race-d'], ttl: '1h' });
      const token = child.body.auth.client_token as string;
      const creds = api().call('GET', 'race-d/creds/slow', { token });
      await sleep(raceDelay(i));
      const revoked = await api().call('PUT', 'auth/token/revoke', { body: { token } });
      assert.equal(revoked.status, 204, `round ${i}: ${revoked.text}`);
      const issued = await creds;
      // Issued before the revocation began (then revoked with the token), or refused: nothing may be left.
      assert.ok(issued.status === 200 || issued.status === 403, `round ${i}: ${issued.status} ${issued.text}`);
      assert.deepEqual(await leasesUnder('race-d/creds/slow/'), [], `round ${i}: a lease outlived its token`);
      assert.deepEqual(await flavor.dynamicUsers(db), before, `round ${i}: a user outlived its token`);
    }
  });

  it('a seal waits for a creds request in flight, which ends with its lease; requests arriving meanwhile get 503', async () => {
    await mountSlowRole('race-s');
    let credsDone = 0;
    const creds = api()
      .call('GET', 'race-s/creds/slow')
      .then((r) => ((credsDone = Date.now()), r));
    await sleep(CREATE_MS / 3);
    const seal = api()
      .call('PUT', 'sys/seal')
      .then((r) => [r, Date.now()] as const);
    await sleep(20);
    const meanwhile = await api().call('GET', 'secret/data/anything');
    const [sealed, sealedAt] = await seal;
    const issued = await creds;
    assert.equal(sealed.status, 204, sealed.text);
    assert.equal(issued.status, 200, `the request in flight was cut off by the seal: ${issued.text}`);
    assert.ok(credsDone <= sealedAt, 'the seal answered before the request in flight ended');
    assert.equal(meanwhile.status, 503, `a request during the seal: ${meanwhile.text}`);
    for (const key of srv.keys.slice(0, 2)) await api().call('PUT', 'sys/unseal', { body: { key } });
    assert.deepEqual(await leasesUnder('race-s/creds/slow/'), [issued.body.lease_id.split('/').pop()]);
    assert.ok(await canLogIn(issued.body.data.username, issued.body.data.password));
    await write('sys/leases/revoke-prefix/race-s/creds/slow');
  });

  it('a static role whose first rotation ends ambiguously is kept, says so, and is finished by the schedule', async () => {
    const original = 'ambiguous-original-pw-1c7d';
    await db.query('CREATE TABLE rotation_trap (armed int)');
    await db.query('INSERT INTO rotation_trap VALUES (1)');
    for (const sql of flavor.createUser('static_ambiguous', original)) await db.query(sql);
    await mountSlowRole('race-c');
    // The new password commits, then the connection is cut before Cofre hears back: Cofre cannot know whether
    // the database took the password. The trap cuts only while armed, so the next attempt goes through.
    const created = await api().call('PUT', 'race-c/static-roles/ambiguous', {
      body: {
        db_name: 'pg',
        username: 'static_ambiguous',
        rotation_period: '1h',
        rotation_statements: [
          `ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`,
          'COMMIT',
          'SELECT pg_terminate_backend(pg_backend_pid()) FROM rotation_trap',
        ],
      },
    });
    assert.ok(created.status >= 500, created.text);
    assert.equal(await canLogIn('static_ambiguous', original), false, 'the database took the new password');

    const role = await api().call('GET', 'race-c/static-roles/ambiguous');
    assert.equal(role.status, 200, `the role must be kept: ${role.text}`);
    assert.match(created.body.errors[0], /stored.*retried/);
    assert.notEqual(role.body.data.last_rotation_error, '');
    const pending = await api().call('GET', 'race-c/static-creds/ambiguous');
    assert.equal(pending.status, 503, pending.text);
    assert.match(pending.body.errors[0], /first rotation is pending/);

    await db.query('DELETE FROM rotation_trap');
    const settled = await until(
      'the schedule retries the rotation',
      async () => {
        const res = await api().call('GET', 'race-c/static-creds/ambiguous');
        return res.status === 200 ? (res.body.data.password as string) : undefined;
      },
      20_000,
    );
    assert.equal(await canLogIn('static_ambiguous', settled), true);
    const after = await api().call('GET', 'race-c/static-roles/ambiguous');
    assert.equal(after.body.data.last_rotation_error, '');

    await write('race-c/rotate-role/ambiguous');
    const rotated = await api().call('GET', 'race-c/static-creds/ambiguous');
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.body.data.password, settled);
    assert.equal(await canLogIn('static_ambiguous', settled), false);
    assert.equal(await canLogIn('static_ambiguous', rotated.body.data.password), true);
  });

  it('lease totals are Prometheus counters, lease numbers of now are gauges', async () => {
    await mountSlowRole('race-e');
    const cred = await api().call('GET', 'race-e/creds/slow');
    assert.equal(cred.status, 200, cred.text);
    await write('sys/leases/revoke', { lease_id: cred.body.lease_id });
    const res = await api().call('GET', 'sys/metrics?format=prometheus');
    assert.equal(res.status, 200);
    const text = res.text;
    assert.match(text, /^# TYPE cofre_expire_revoked_total counter$/m);
    assert.match(text, /^# TYPE cofre_expire_revoke_failures_total counter$/m);
    assert.match(text, /^# TYPE cofre_expire_leases gauge$/m);
    assert.match(text, /^# TYPE cofre_expire_pending_retries gauge$/m);
    assert.match(text, /^cofre_expire_revoked_total [1-9]\d*$/m);
    assert.doesNotMatch(text, /^cofre_expire_revoked /m);
  });
});

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import nodeVault from 'node-vault';
import type { TestDatabase } from '../scripts/test-databases.js';
import { canLogIn as canLogInAs, type Flavor } from './database-flavors.js';
import {
  apiClient,
  freePort,
  runCli as cofre,
  spawnDevServer,
  startServer,
  tempDir,
  writeOk,
  type InProcessServer,
} from './support.js';

const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'initial-admin-pw-7f3a9c';

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/**
 * The database secrets engine against a real database server of one flavor, through Cofre's HTTP API: dynamic
 * credentials and their leases, static roles and their rotation, rotate-root, failures, and what is left behind.
 */
export function describeDatabaseEngine(flavor: Flavor): void {
  describe(`database secrets engine on ${flavor.name}`, () => {
    let db: TestDatabase;
    let srv: InProcessServer;
    const dir = tempDir('database');
    /** Every password Cofre handed out or was given: none may appear in the audit log or the storage file. */
    const passwords = new Set<string>([ADMIN_PASSWORD]);

    const api = () => srv.api;
    const creds = async (role: string, token?: string) => {
      const res = await api().call('GET', `database/creds/${role}`, token ? { token } : {});
      assert.equal(res.status, 200, res.text);
      passwords.add(res.body.data.password);
      return res.body as { lease_id: string; lease_duration: number; data: { username: string; password: string } };
    };
    const write = (path: string, body: unknown) => writeOk(api(), path, body);
    const canLogIn = (user: string, password: string) => canLogInAs(flavor, db, user, password);

    /** Stops the server and starts it again on the same files, unsealed with the same keys. */
    const restart = async (pauseMs = 0) => {
      const { keys, rootToken } = srv;
      await srv.stop();
      await sleep(pauseMs);
      const next = await startServer({ dir, initialised: false, port: await freePort() });
      for (const key of keys.slice(0, 2)) await next.api.call('PUT', 'sys/unseal', { body: { key } });
      srv = { ...next, keys, rootToken, api: apiClient(next.url, rootToken) };
    };

    before(async () => {
      db = await flavor.start();
      for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
      srv = await startServer({ dir });
      await write('sys/audit/file', { type: 'file', options: { file_path: join(dir, 'audit.log') } });
      await write('sys/mounts/database', { type: 'database' });
      await write('database/config/main', {
        plugin_name: flavor.plugin,
        connection_url: flavor.connectionUrl(db),
        username: ADMIN,
        password: ADMIN_PASSWORD,
        allowed_roles: '*',
      });
      await write('database/roles/readonly', {
        db_name: 'main',
        creation_statements: flavor.creation,
        default_ttl: '1h',
      });
      await write('database/roles/short', { db_name: 'main', creation_statements: flavor.creation, default_ttl: 2 });
    });
    after(async () => {
      await srv?.stop();
      await db?.stop();
    });

    it('a credential logs in, can do what its statements grant and nothing more; revoking it drops the user', async () => {
      const cred = await creds('readonly');
      const { username, password } = cred.data;
      assert.match(cred.lease_id, /^database\/creds\/readonly\/.+/);
      assert.equal(cred.lease_duration, 3600);
      await flavor.runAs(db, username, password, flavor.allowedSelect);
      await assert.rejects(flavor.runAs(db, username, password, flavor.forbiddenSelect));
      await assert.rejects(flavor.runAs(db, username, password, flavor.allowedInsert));
      await assert.rejects(flavor.runAs(db, username, 'wrong-password', 'SELECT 1'));

      const lookup = await api().call('PUT', 'sys/leases/lookup', { body: { lease_id: cred.lease_id } });
      assert.equal(lookup.status, 200);
      assert.equal(lookup.body.data.id, cred.lease_id);
      assert.ok(lookup.body.data.ttl > 3500);

      await write('sys/leases/revoke', { lease_id: cred.lease_id });
      assert.equal(await canLogIn(username, password), false);
      assert.equal(await flavor.userExists(db, username), false);
      const gone = await api().call('PUT', 'sys/leases/lookup', { body: { lease_id: cred.lease_id } });
      assert.equal(gone.status, 400);
    });

    it('a Vault client we did not write (node-vault) reads, renews and revokes credentials', async () => {
      const vault = nodeVault({ apiVersion: 'v1', endpoint: srv.url, token: srv.rootToken });
      const cred = await vault.read('database/creds/readonly');
      passwords.add(cred.data.password);
      assert.equal(await canLogIn(cred.data.username, cred.data.password), true);
      const renewed = await vault.write('sys/leases/renew', { lease_id: cred.lease_id, increment: 600 });
      assert.equal(renewed.lease_id, cred.lease_id);
      assert.equal(renewed.lease_duration, 600, 'an uncapped renewal grants exactly the increment asked for');
      await vault.revoke({ lease_id: cred.lease_id });
      assert.equal(await flavor.userExists(db, cred.data.username), false);
    });

    it('a renewal capped by the max TTL reports what is left rounded down, never past the lease’s end', async () => {
      // Rounded to the nearest second, 2.7 s left came back as 3: an agent timing its next credential by it acted
      // after the old one had ended.
      await write('database/roles/capped', {
        db_name: 'main',
        creation_statements: flavor.creation,
        default_ttl: 6,
        max_ttl: 6,
      });
      const cred = await creds('capped');
      const looked = await api().call('PUT', 'sys/leases/lookup', { body: { lease_id: cred.lease_id } });
      const maxExpire = Date.parse(looked.body.data.max_expire_time as string);
      await sleep(Math.max(0, maxExpire - Date.now() - 2_700));
      const asked = Date.now();
      const renewed = await write('sys/leases/renew', { lease_id: cred.lease_id, increment: 600 });
      const grantedMs = (renewed.body.lease_duration as number) * 1000;
      assert.ok(grantedMs < 600_000, 'capped by the max TTL');
      assert.ok(grantedMs <= maxExpire - asked, `granted ${grantedMs} ms with ${maxExpire - asked} ms left`);
      await write('sys/leases/revoke', { lease_id: cred.lease_id });

      // A new credential's lease capped by its token's expiry: the same rule.
      const child = await write('auth/token/create', { policies: ['root'], ttl: '6s' });
      const token = child.body.auth.client_token as string;
      const tokenEnd = Date.parse(
        (await api().call('GET', 'auth/token/lookup-self', { token })).body.data.expire_time as string,
      );
      await sleep(Math.max(0, tokenEnd - Date.now() - 2_700));
      const issuedAsked = Date.now();
      const capped = await creds('readonly', token);
      assert.ok(
        capped.lease_duration * 1000 <= tokenEnd - issuedAsked,
        `issued for ${capped.lease_duration} s with ${tokenEnd - issuedAsked} ms left of its token`,
      );
      await write('sys/leases/revoke', { lease_id: capped.lease_id });
    });

    it('a credential is revoked when its TTL ends, without any request', async () => {
      const cred = await creds('short');
      assert.equal(cred.lease_duration, 2);
      assert.equal(await canLogIn(cred.data.username, cred.data.password), true);
      await until('the expired user is dropped', async () => !(await flavor.userExists(db, cred.data.username)));
      assert.equal(await canLogIn(cred.data.username, cred.data.password), false);
    });

    it('a restart during a lease, or one that lasts past its expiry, still revokes it on time', async () => {
      const during = await creds('short');
      const issued = Date.now();
      await restart();
      await until('the lease from before the restart is revoked', async () => {
        return !(await flavor.userExists(db, during.data.username));
      });
      assert.ok(Date.now() - issued < 6000, 'revoked within a few seconds of its 2 s TTL');

      const past = await creds('short');
      await restart(3000); // down for longer than the lease's TTL
      await until(
        'the lease that expired while down is revoked',
        async () => {
          return !(await flavor.userExists(db, past.data.username));
        },
        5000,
      );
    });

    it('revoking a token revokes the credentials it asked for', async () => {
      await write('sys/policies/acl/db-reader', {
        policy: 'path "database/creds/readonly" { capabilities = ["read"] }',
      });
      const token = await api().call('POST', 'auth/token/create', { body: { policies: ['db-reader'] } });
      const child = token.body.auth.client_token as string;
      const cred = await creds('readonly', child);
      await write('auth/token/revoke', { token: child });
      assert.equal(await flavor.userExists(db, cred.data.username), false);
    });

    it('a static role: creation takes over the password, rotate-role and the schedule change it', async () => {
      const original = 'static-original-pw-91b2';
      for (const sql of flavor.createUser('static_app', original)) await db.query(sql);
      await write('database/static-roles/app', { db_name: 'main', username: 'static_app', rotation_period: '1h' });
      assert.equal(await canLogIn('static_app', original), false);
      const first = await api().call('GET', 'database/static-creds/app');
      assert.equal(first.status, 200, first.text);
      passwords.add(first.body.data.password);
      assert.equal(first.body.data.username, 'static_app');
      assert.ok(first.body.data.ttl > 3500 && first.body.data.ttl <= 3600);
      assert.ok(first.body.data.last_vault_rotation);
      assert.equal(await canLogIn('static_app', first.body.data.password), true);

      await write('database/rotate-role/app', {});
      const second = await api().call('GET', 'database/static-creds/app');
      passwords.add(second.body.data.password);
      assert.notEqual(second.body.data.password, first.body.data.password);
      assert.equal(await canLogIn('static_app', first.body.data.password), false);
      assert.equal(await canLogIn('static_app', second.body.data.password), true);

      for (const sql of flavor.createUser('static_sched', original)) await db.query(sql);
      await write('database/static-roles/sched', { db_name: 'main', username: 'static_sched', rotation_period: 5 });
      const before = (await api().call('GET', 'database/static-creds/sched')).body.data.password as string;
      passwords.add(before);
      let after = before;
      await until(
        'the schedule rotates the password',
        async () => {
          after = (await api().call('GET', 'database/static-creds/sched')).body.data.password as string;
          return after !== before;
        },
        9000,
      );
      passwords.add(after);
      assert.equal(await canLogIn('static_sched', before), false);
      assert.equal(await canLogIn('static_sched', after), true);
      await write('database/static-roles/sched', { rotation_period: '1h' }); // quiet for the rest of the run
    });

    it('rotate-root: the configured root password stops working and Cofre keeps working', async () => {
      assert.equal(await canLogIn(ADMIN, ADMIN_PASSWORD), true);
      await write('database/rotate-root/main', {});
      assert.equal(await canLogIn(ADMIN, ADMIN_PASSWORD), false);
      const config = await api().call('GET', 'database/config/main');
      assert.equal(config.status, 200);
      assert.ok(!JSON.stringify(config.body).includes(ADMIN_PASSWORD));
      const cred = await creds('readonly');
      assert.equal(await canLogIn(cred.data.username, cred.data.password), true);
      await write('sys/leases/revoke', { lease_id: cred.lease_id });
    });

    it('rotate-root racing a delete, a config change and another rotate-root: nothing made again or undone, the new password known', async () => {
      // Each connection logs in as an administrator of its own (a rotation changes its password), and rotates with
      // a pause before the ALTER, so that the other request lands while the rotation is under way.
      let n = 0;
      const connection = async (extra: Record<string, unknown> = {}) => {
        const name = `rotating${++n}`;
        const user = `cofre_rot_${n}`;
        const password = `rot-initial-${n}-a1b2c3`;
        passwords.add(password);
        for (const sql of flavor.setup(user, password).filter((s) => s.includes(user))) await db.query(sql);
        await write(`database/config/${name}`, {
          plugin_name: flavor.plugin,
          connection_url: flavor.connectionUrl(db),
          username: user,
          password,
          allowed_roles: '*',
          root_rotation_statements: flavor.slowSetPassword(0.4),
          ...extra,
        });
        await write(`database/roles/${name}`, { db_name: name, creation_statements: flavor.creation });
        return { name, user, password };
      };
      const rotate = (name: string) => api().call('PUT', `database/rotate-root/${name}`, { body: {} });
      /** The stored password works: a pool opened anew from the config hands out a credential that logs in. */
      const works = async (name: string) => {
        await write(`database/reset/${name}`, {});
        const cred = await creds(name);
        assert.equal(await canLogIn(cred.data.username, cred.data.password), true);
        await write('sys/leases/revoke', { lease_id: cred.lease_id });
      };

      // Deleted while its password is rotated: it stays deleted (it used to come back, root credentials and all).
      const deleted = await connection();
      const rotating = rotate(deleted.name);
      await sleep(200);
      assert.equal((await api().call('DELETE', `database/config/${deleted.name}`)).status, 204);
      const refused = await rotating;
      assert.equal(refused.status, 404, refused.text);
      assert.match(refused.body.errors[0], /was deleted while its root password was rotated/);
      assert.equal((await api().call('GET', `database/config/${deleted.name}`)).status, 404);
      assert.equal(await canLogIn(deleted.user, deleted.password), false, 'the database did change');

      // Changed while its password is rotated: the change stays (it used to be written over), the password works.
      const changed = await connection({ allowed_roles: ['first'] });
      const rotatingChanged = rotate(changed.name);
      await sleep(200);
      await write(`database/config/${changed.name}`, { allowed_roles: [changed.name], verify_connection: false });
      assert.equal((await rotatingChanged).status, 204);
      const config = await api().call('GET', `database/config/${changed.name}`);
      assert.deepEqual(config.body.data.allowed_roles, [changed.name]);
      assert.equal(await canLogIn(changed.user, changed.password), false);
      await works(changed.name);

      // Two rotations at once (the second starting while the first waits): both succeed and the stored password is
      // the database's.
      const twice = await connection();
      const first = rotate(twice.name);
      await sleep(200);
      const [a, b] = await Promise.all([first, rotate(twice.name)]);
      assert.deepEqual([a.status, b.status], [204, 204], `${a.text} ${b.text}`);
      await works(twice.name);
    });

    it('a database that is down: a clear error naming the connection, no lease, no user, the server stays up', async () => {
      const port = await freePort();
      const down = flavor.connectionUrl({ ...db, port });
      await write('database/config/offline', {
        plugin_name: flavor.plugin,
        connection_url: down,
        username: ADMIN,
        password: 'whatever-pw-55',
        allowed_roles: '*',
        verify_connection: false,
      });
      await write('database/roles/offline', { db_name: 'offline', creation_statements: flavor.creation });
      const res = await api().call('GET', 'database/creds/offline');
      assert.ok(res.status >= 500 && res.status < 600, res.text);
      assert.match(res.body.errors[0], /offline/);
      assert.doesNotMatch(res.text, /whatever-pw-55|\n\s+at /);
      const leases = await api().call('LIST', 'sys/leases/lookup/database/creds/offline/');
      assert.equal(leases.status, 404);
      assert.equal((await api().call('GET', 'sys/health')).status, 200);

      // Reachable, but a statement fails half-way: nothing of the user is left behind.
      const usersBefore = await flavor.dynamicUsers(db);
      await write('database/roles/broken', {
        db_name: 'main',
        creation_statements: [flavor.creation[0]!, 'GRANT SELECT ON no_such_table TO nobody_here'],
      });
      const broken = await api().call('GET', 'database/creds/broken');
      assert.ok(broken.status >= 400, broken.text);
      assert.deepEqual(await flavor.dynamicUsers(db), usersBefore);
      assert.equal((await api().call('LIST', 'sys/leases/lookup/database/creds/broken/')).status, 404);
    });

    it('cofre lease lookup, renew and revoke', async () => {
      const cred = await creds('readonly');
      const lookup = await cofre(srv.url, srv.rootToken, 'lease', 'lookup', '-format=json', cred.lease_id);
      assert.equal(lookup.code, 0, lookup.out);
      assert.equal(JSON.parse(lookup.out).data.id, cred.lease_id);
      const renew = await cofre(srv.url, srv.rootToken, 'lease', 'renew', '-increment=10m', cred.lease_id);
      assert.equal(renew.code, 0, renew.out);
      assert.match(renew.out, /lease_duration\s+10m/);
      const revoke = await cofre(srv.url, srv.rootToken, 'lease', 'revoke', cred.lease_id);
      assert.equal(revoke.code, 0, revoke.out);
      assert.match(revoke.out, /Success! Revoked lease/);
      assert.equal(await flavor.userExists(db, cred.data.username), false);
      const again = await cofre(srv.url, srv.rootToken, 'lease', 'lookup', cred.lease_id);
      assert.equal(again.code, 1);
      assert.match(again.out, /invalid lease/);
    });

    it('a password policy on the connection shapes the passwords', async () => {
      const policy =
        'length = 30\nrule "charset" {\n  charset = "abcdefghijklmnopqrstuvwxyz0123456789"\n  min-chars = 1\n}';
      await write('sys/policies/password/db-lower', { policy });
      await write('database/config/main', { password_policy: 'db-lower', verify_connection: false });
      const cred = await creds('readonly');
      assert.match(cred.data.password, /^[a-z0-9]{30}$/);
      assert.equal(await canLogIn(cred.data.username, cred.data.password), true);
      await write('sys/leases/revoke', { lease_id: cred.lease_id });
      await write('database/config/main', { password_policy: '', verify_connection: false });
    });

    it('disabling the mount revokes its credentials', async () => {
      await write('sys/mounts/db-temp', { type: 'database' });
      await write('db-temp/config/c', {
        plugin_name: flavor.plugin,
        connection_url: flavor.connectionUrl(db),
        username: db.user,
        password: db.password,
        allowed_roles: 'r',
      });
      await write('db-temp/roles/r', { db_name: 'c', creation_statements: flavor.creation });
      const res = await api().call('GET', 'db-temp/creds/r');
      assert.equal(res.status, 200, res.text);
      passwords.add(res.body.data.password);
      assert.equal(await flavor.userExists(db, res.body.data.username), true);
      assert.equal((await api().call('DELETE', 'sys/mounts/db-temp')).status, 204);
      assert.equal(await flavor.userExists(db, res.body.data.username), false);
    });

    it('the server log holds no password, even with request logging on', async () => {
      const devDir = tempDir('database-log');
      const dev = await spawnDevServer(devDir, await freePort(), 'log-root', ['--log-level', 'debug']);
      try {
        const devApi = apiClient(dev.url, 'log-root');
        const put = async (path: string, body: unknown) => {
          const res = await devApi.call('PUT', path, { body });
          assert.ok(res.status < 300, `${path}: ${res.text}`);
          return res;
        };
        await put('sys/mounts/database', { type: 'database' });
        await put('database/config/c', {
          plugin_name: flavor.plugin,
          connection_url: flavor.connectionUrl(db),
          username: db.user,
          password: db.password,
          allowed_roles: '*',
        });
        await put('database/roles/r', { db_name: 'c', creation_statements: flavor.creation });
        const secrets = [db.password];
        for (let i = 0; i < 3; i++) {
          const res = await devApi.call('GET', 'database/creds/r');
          assert.equal(res.status, 200, res.text);
          secrets.push(res.body.data.password);
          await put('sys/leases/revoke', { lease_id: res.body.lease_id });
        }
        // A statement that fails with the password in it: the error is redacted, and so is the log.
        await put('database/roles/leaky', {
          db_name: 'c',
          creation_statements: [flavor.leakyStatement],
        });
        const leaky = await devApi.call('GET', 'database/creds/leaky');
        assert.ok(leaky.status >= 400);
        assert.match(leaky.body.errors[0], /\[redacted\]/);
        const output = dev.output();
        assert.ok(output.length > 0);
        for (const secret of secrets) assert.ok(!output.includes(secret), 'a password is in the server log');
        assert.ok(!leaky.text.includes(db.password));
      } finally {
        dev.child.kill('SIGKILL');
        rmSync(devDir, { recursive: true, force: true });
      }
    });

    it('1,000 issue/revoke cycles leave no user behind', async () => {
      const before = await flavor.dynamicUsers(db);
      let next = 0;
      const worker = async () => {
        while (next < 1000) {
          next++;
          const cred = await creds('readonly');
          const res = await api().call('PUT', 'sys/leases/revoke', { body: { lease_id: cred.lease_id } });
          assert.equal(res.status, 204, res.text);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      assert.deepEqual(await flavor.dynamicUsers(db), before);
    });

    it('no password appears in the audit log or the storage files', async () => {
      await srv.stop();
      const files = [
        join(dir, 'audit.log'),
        ...readdirSync(dir)
          .filter((f) => f.startsWith('cofre.db'))
          .map((f) => join(dir, f)),
      ];
      for (const file of files) {
        const content = readFileSync(file).toString('latin1');
        for (const password of passwords) assert.ok(!content.includes(password), `a password is in ${file}`);
      }
      assert.ok(passwords.size > 1000);
      srv = await startServer({ dir: tempDir('database-spare') }); // after() stops it
    });
  });
}

import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { enableFileAudit, startServer, writeOk, type InProcessServer } from './support.js';

/**
 * Writes of auth and engine objects that race their deletion or creation: a user changing its own password while an operator deletes it, a
 * token that may only update a role while the role is deleted. The write decides on the object as stored when it
 * commits (a check in its commit, read again when refused), so a deleted user or role is never made again by a write
 * that read it before the delete, and a write that would now create it asks the ACL for create. A userpass password
 * is hashed with scrypt before it is stored (a few hundred milliseconds): the window a delete lands in.
 */
describe('auth objects written while they are deleted', () => {
  let srv: InProcessServer;
  let updater = '';
  let creator = '';
  let both = '';

  const call = (method: string, path: string, token: string, body?: unknown) =>
    srv.api.call(method, path, { token, ...(body !== undefined ? { body } : {}) });
  const userpass = () => srv.cofre.core.mounts.match('auth/userpass/')!.storage;
  const storedUser = async (name: string) => {
    const bytes = await userpass().get(`user/${name}`);
    return bytes && JSON.parse(Buffer.from(bytes).toString('utf8'));
  };
  const login = (name: string, password: string) =>
    srv.api.call('POST', `auth/userpass/login/${name}`, { token: '', body: { password } });
  /** A user whose hash was made with weaker scrypt parameters: its next login rehashes it. */
  const plantWeakUser = async (name: string, password: string) => {
    const salt = randomBytes(16);
    const hash = scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 }).toString('base64');
    const password_hash = { algorithm: 'scrypt', n: 1024, r: 8, p: 1, salt: salt.toString('base64'), hash };
    await userpass().put(`user/${name}`, Buffer.from(JSON.stringify({ password_hash })));
  };

  // Never connected to: a role's write only needs its connection to be configured.
  const connection = {
    plugin_name: 'postgresql-database-plugin',
    connection_url: 'postgresql://{{username}}:{{password}}@127.0.0.1:1/postgres',
    username: 'admin',
    password: 'unused-pw',
    allowed_roles: '*',
    verify_connection: false,
  };

  before(async () => {
    srv = await startServer();
    // Each request's audit entry is written to a file before its handler runs: a wait in which another request's
    // commit can land, as it can on a busy server (or from another node).
    await enableFileAudit(srv.api, join(srv.dir, 'audit.log'));
    await writeOk(srv.api, 'sys/auth/userpass', { type: 'userpass' });
    await writeOk(srv.api, 'sys/auth/kubernetes', { type: 'kubernetes' });
    await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'sys/mounts/transit', { type: 'transit' });
    await writeOk(srv.api, 'database/config/main', connection);
    await writeOk(srv.api, 'sys/policies/acl/update-only', {
      policy:
        'path "auth/userpass/users/*" { capabilities = ["update"] }\n' +
        'path "auth/token/roles/*" { capabilities = ["update"] }\n' +
        'path "auth/kubernetes/role/*" { capabilities = ["update"] }\n' +
        'path "auth/approle/role/*" { capabilities = ["update"] }\n' +
        'path "database/roles/*" { capabilities = ["update"] }\n' +
        'path "database/config/*" { capabilities = ["update"] }\n' +
        'path "database/static-roles/*" { capabilities = ["update"] }\n' +
        'path "sys/cofre/clusters/*" { capabilities = ["update"] }\n' +
        'path "sys/cofre/deliveries/*" { capabilities = ["update"] }\n' +
        'path "sys/cofre/placements/*" { capabilities = ["update"] }',
    });
    await writeOk(srv.api, 'sys/policies/acl/create-only', {
      policy: 'path "transit/encrypt/*" { capabilities = ["create"] }',
    });
    await writeOk(srv.api, 'sys/policies/acl/create-update', {
      policy:
        'path "auth/token/roles/*" { capabilities = ["create", "update"] }\n' +
        'path "auth/userpass/users/*" { capabilities = ["create", "update"] }\n' +
        'path "transit/encrypt/*" { capabilities = ["create", "update"] }',
    });
    const token = async (policy: string) =>
      (await srv.api.call('POST', 'auth/token/create', { body: { policies: [policy] } })).body.auth.client_token;
    updater = await token('update-only');
    creator = await token('create-only');
    both = await token('create-update');
  });
  after(() => srv?.stop());

  it("a user's own password change never makes the user again after an operator deleted it", async () => {
    const outcomes: Record<number, number> = {};
    for (let i = 0; i < 6; i++) {
      const name = `pw-${i}`;
      await writeOk(srv.api, `auth/userpass/users/${name}`, { password: 'first-pw' });
      const changed = call('POST', `auth/userpass/users/${name}/password`, updater, { password: 'second-pw' });
      // The change has read the user and is hashing the new password.
      await sleep(20);
      const removed = await call('DELETE', `auth/userpass/users/${name}`, srv.rootToken);
      assert.equal(removed.status, 204, removed.text);
      const written = await changed;
      outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
      assert.ok([204, 400].includes(written.status), `${written.status} ${written.text}`);
      if (written.status === 400) assert.match(written.text, /username does not exist/);
      assert.equal(await storedUser(name), undefined, `${name} was made again by its password change`);
      assert.equal((await login(name, 'second-pw')).status, 400);
    }
    assert.ok((outcomes[400] ?? 0) > 0, `no delete landed while a password was hashed: ${JSON.stringify(outcomes)}`);
  });

  it('an update of users/:name by a token without create is refused when the user was deleted meanwhile', async () => {
    const outcomes: Record<number, number> = {};
    for (let i = 0; i < 6; i++) {
      const name = `upd-${i}`;
      await writeOk(srv.api, `auth/userpass/users/${name}`, { password: 'first-pw' });
      const changed = call('POST', `auth/userpass/users/${name}`, updater, { password: 'second-pw', token_ttl: 60 });
      await sleep(20);
      assert.equal((await call('DELETE', `auth/userpass/users/${name}`, srv.rootToken)).status, 204);
      const written = await changed;
      outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
      assert.ok([204, 403].includes(written.status), `${written.status} ${written.text}`);
      assert.equal(await storedUser(name), undefined, `${name} was made again by a token that may not create it`);
    }
    assert.ok((outcomes[403] ?? 0) > 0, `no update found its user deleted: ${JSON.stringify(outcomes)}`);
  });

  it('a token that may create and update makes the user again, as a creation with the fields it gives', async () => {
    const name = 'remade';
    await writeOk(srv.api, `auth/userpass/users/${name}`, { password: 'first-pw', token_ttl: 30 });
    const changed = call('POST', `auth/userpass/users/${name}`, both, { password: 'second-pw', token_max_ttl: 600 });
    await sleep(20);
    assert.equal((await call('DELETE', `auth/userpass/users/${name}`, srv.rootToken)).status, 204);
    const written = await changed;
    assert.equal(written.status, 204, written.text);
    const user = await storedUser(name);
    // Made anew: the deleted user's token_ttl is not carried over.
    assert.equal(user?.token_ttl ?? 0, 0, JSON.stringify(user));
    assert.equal(user?.token_max_ttl, 600);
    assert.equal((await login(name, 'second-pw')).status, 200);
    // Audited as authorised (an update), answered as done (a creation).
    const entries = readFileSync(join(srv.dir, 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; request: { id: string; operation: string; path: string } })
      .filter((entry) => entry.request.path === `auth/userpass/users/${name}`);
    const asked = entries.find((e) => e.type === 'request' && e.request.operation === 'update');
    assert.ok(asked, 'the request entry names the update it was authorised as');
    const answered = entries.find((e) => e.type === 'response' && e.request.id === asked.request.id);
    assert.equal(answered?.request.operation, 'create', 'the response entry names the creation it did');
  });

  it("a login's rehash never makes a deleted user again, nor puts back the password it was given", async () => {
    await plantWeakUser('rehash-deleted', 'old-pw');
    const loggedIn = login('rehash-deleted', 'old-pw');
    await sleep(20);
    await userpass().delete('user/rehash-deleted');
    assert.equal((await loggedIn).status, 200, 'the login itself was valid when it was checked');
    await sleep(50);
    assert.equal(await storedUser('rehash-deleted'), undefined, 'the rehash made the deleted user again');

    await plantWeakUser('rehash-changed', 'old-pw');
    const again = login('rehash-changed', 'old-pw');
    await sleep(20);
    // The operator sets a new password while the login rehashes the old one.
    await plantWeakUser('rehash-changed', 'new-pw');
    const planted = (await storedUser('rehash-changed')).password_hash;
    assert.equal((await again).status, 200);
    await sleep(50);
    assert.deepEqual(
      (await storedUser('rehash-changed')).password_hash,
      planted,
      'the rehash put the old password back',
    );
    assert.equal((await login('rehash-changed', 'old-pw')).status, 400);
  });

  it('a token, Kubernetes, AppRole, database or static role, or a database connection, deleted meanwhile is not made again by a token that may only update it', async () => {
    const outcomes: Record<string, number> = {};
    for (const [mountPath, body] of [
      ['auth/token/roles', { orphan: true }],
      ['auth/kubernetes/role', { bound_service_account_names: ['app'], bound_service_account_namespaces: ['ns'] }],
      ['auth/approle/role', { token_ttl: 60 }],
      ['database/roles', { db_name: 'main', creation_statements: 'CREATE ROLE "{{name}}"' }],
      ['database/config', connection],
      // Made with its first rotation failing (the connection is never reached): stored all the same, with a 502.
      ['database/static-roles', { db_name: 'main', username: 'static_user', rotation_period: '1h' }],
    ] as const) {
      for (let i = 0; i < 40; i++) {
        const path = `${mountPath}/race-${i}`;
        const made = await call('POST', path, srv.rootToken, body);
        assert.ok(made.status < 300 || (mountPath === 'database/static-roles' && made.status === 502), made.text);
        const [removed, written] = await Promise.all([
          call('DELETE', path, srv.rootToken),
          call('POST', path, updater, body),
        ]);
        assert.equal(removed.status, 204, removed.text);
        assert.ok([200, 204, 403].includes(written.status), `${path}: ${written.status} ${written.text}`);
        const key = `${mountPath} ${written.status}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        assert.equal((await call('GET', path, srv.rootToken)).status, 404, `${path} was made again`);
      }
    }
    assert.ok((outcomes['auth/token/roles 403'] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
    assert.ok((outcomes['auth/kubernetes/role 403'] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
    assert.ok((outcomes['auth/approle/role 403'] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
    assert.ok((outcomes['database/roles 403'] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
    assert.ok((outcomes['database/config 403'] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
    assert.ok((outcomes['database/static-roles 403'] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
  });

  it('a cluster, delivery or placement deleted meanwhile is not made again by a token that may only update it', async () => {
    await writeOk(srv.api, 'sys/cofre/deliveries/placed', {
      namespace: 'shop',
      items: [{ name: 'config', mode: 'configmap', literal: { LOG_LEVEL: 'info' } }],
    });
    const outcomes: Record<string, number> = {};
    for (const [folder, body] of [
      ['sys/cofre/clusters', { labels: { region: 'eu' } }],
      ['sys/cofre/deliveries', { namespace: 'x', items: [{ name: 'a', mode: 'configmap', literal: { a: 'b' } }] }],
      ['sys/cofre/placements', { delivery: 'placed', clusters: ['store-1'] }],
    ] as const) {
      for (let i = 0; i < 40; i++) {
        const path = `${folder}/race-${i}`;
        await writeOk(srv.api, path, body);
        // The write sent a little later each time, for the delete to land anywhere between its check and its commit.
        const removing = call('DELETE', path, srv.rootToken);
        for (let turn = 0; turn < i; turn++) await new Promise(setImmediate);
        const written = await call('PUT', path, updater, body);
        const removed = await removing;
        assert.equal(removed.status, 204, removed.text);
        // 404: a relabel that found the cluster and then lost it to the deregistration.
        assert.ok([200, 204, 403, 404].includes(written.status), `${path}: ${written.status} ${written.text}`);
        assert.doesNotMatch(written.text, /bootstrap_token/, `${path}: registered again by a token that may relabel`);
        const key = `${folder} ${written.status}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        assert.equal((await call('GET', path, srv.rootToken)).status, 404, `${path} was made again`);
      }
    }
    for (const folder of ['sys/cofre/clusters', 'sys/cofre/deliveries', 'sys/cofre/placements']) {
      const refused = (outcomes[`${folder} 403`] ?? 0) + (outcomes[`${folder} 404`] ?? 0);
      assert.ok(refused > 0, `${folder}: no write found it deleted: ${JSON.stringify(outcomes)}`);
    }
  });

  it('a transit encrypt that may only create does not use a key another request made meanwhile', async () => {
    const outcomes: Record<number, number> = {};
    const plaintext = Buffer.from('race').toString('base64');
    for (let i = 0; i < 40; i++) {
      const [made, encrypted] = await Promise.all([
        call('POST', `transit/keys/k-${i}`, srv.rootToken, {}),
        call('POST', `transit/encrypt/k-${i}`, creator, { plaintext }),
      ]);
      assert.ok([200, 204].includes(made.status), made.text);
      assert.ok([200, 403].includes(encrypted.status), `${encrypted.status} ${encrypted.text}`);
      outcomes[encrypted.status] = (outcomes[encrypted.status] ?? 0) + 1;
    }
    assert.ok((outcomes[403] ?? 0) > 0, `never raced: ${JSON.stringify(outcomes)}`);
    // A token that may create and update is never refused by the race.
    for (let i = 0; i < 20; i++) {
      const [, encrypted] = await Promise.all([
        call('POST', `transit/keys/both-${i}`, srv.rootToken, {}),
        call('POST', `transit/encrypt/both-${i}`, both, { plaintext }),
      ]);
      assert.equal(encrypted.status, 200, encrypted.text);
    }
  });

  it('concurrent writes of one role by a token that may create and update all land', async () => {
    const path = 'auth/token/roles/many-writers';
    const written = await Promise.all(
      Array.from({ length: 10 }, (_, n) => call('POST', path, both, { path_suffix: `s${n}`, orphan: true })),
    );
    assert.deepEqual(
      written.map((r) => r.status),
      written.map(() => 204),
      written.map((r) => r.text).join('\n'),
    );
    const role = await call('GET', path, srv.rootToken);
    assert.match(role.body.data.path_suffix, /^s\d$/);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli, startServer, writeOk, type InProcessServer } from './support.js';

/** sys/remount and sys/remount/status, and `cofre secrets move` / `cofre auth move`, over real HTTP. */
describe('sys/remount', () => {
  let srv: InProcessServer;

  const call = (method: string, path: string, body?: unknown, token?: string) =>
    srv.api.call(method, path, { ...(body !== undefined ? { body } : {}), ...(token !== undefined ? { token } : {}) });
  const remount = (from: string, to: string, token?: string) => call('POST', 'sys/remount', { from, to }, token);
  const statusOf = async (id: string) => {
    const res = await call('GET', `sys/remount/status/${id}`);
    assert.equal(res.status, 200, res.text);
    return res.body.data;
  };
  const tokenWith = async (policy: string): Promise<string> => {
    const name = `p-${Math.random().toString(36).slice(2)}`;
    await writeOk(srv.api, `sys/policies/acl/${name}`, { policy });
    const res = await call('POST', 'auth/token/create', { policies: [name] });
    assert.equal(res.status, 200, res.text);
    return res.body.auth.client_token;
  };

  before(async () => {
    srv = await startServer();
  });
  after(() => srv?.stop());

  it('moves a KV mount with its data, accessor and UUID; the old path serves nothing; status says success', async () => {
    await writeOk(srv.api, 'sys/mounts/kv-src', { type: 'kv', options: { version: '2' }, description: 'moving' });
    await writeOk(srv.api, 'kv-src/data/app/db', { data: { password: 'p1' } });
    await writeOk(srv.api, 'kv-src/data/app/db', { data: { password: 'p2' } });
    const before = (await call('GET', 'sys/mounts/kv-src')).body.data;

    const res = await remount('kv-src', 'kv-dst');
    assert.equal(res.status, 200, res.text);
    const id = res.body.data.migration_id;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await statusOf(id), {
      migration_id: id,
      migration_info: { source_mount: 'kv-src/', target_mount: 'kv-dst/', status: 'success' },
    });

    const read = await call('GET', 'kv-dst/data/app/db');
    assert.equal(read.status, 200, read.text);
    assert.equal(read.body.data.data.password, 'p2');
    assert.equal(read.body.data.metadata.version, 2, 'the versions came along');
    assert.equal((await call('GET', 'kv-dst/data/app/db?version=1')).body.data.data.password, 'p1');
    assert.equal((await call('GET', 'kv-src/data/app/db')).status, 404);
    const after = (await call('GET', 'sys/mounts/kv-dst')).body.data;
    assert.equal(after.accessor, before.accessor);
    assert.equal(after.uuid, before.uuid);
    assert.equal(after.description, 'moving');
    const mounts = (await call('GET', 'sys/mounts')).body.data;
    assert.ok(mounts['kv-dst/'] && !mounts['kv-src/'], Object.keys(mounts).join(','));
    // The old path is free again.
    await writeOk(srv.api, 'sys/mounts/kv-src', { type: 'kv' });
    assert.equal((await call('GET', 'kv-dst/data/app/db')).body.data.data.password, 'p2');
  });

  it('refuses what Vault refuses, with its messages, and changes nothing', async () => {
    await writeOk(srv.api, 'sys/mounts/kv-keep', { type: 'kv' });
    await writeOk(srv.api, 'kv-keep/a', { v: '1' });
    await writeOk(srv.api, 'sys/mounts/team/one', { type: 'kv' });
    await writeOk(srv.api, 'sys/auth/ar', { type: 'approle' });
    const cases: [unknown, string][] = [
      [{ from: 'kv-keep' }, "both 'from' and 'to' path must be specified as a string"],
      [{ from: 'kv-keep ', to: 'x' }, "'from' path cannot contain trailing whitespace"],
      [{ from: 'sys', to: 'x' }, 'cannot remount "sys/"'],
      [{ from: 'cubbyhole', to: 'x' }, 'cannot remount "cubbyhole/"'],
      [{ from: 'kv-keep', to: 'sys/x' }, 'cannot remount to destination "sys/x/"'],
      [{ from: 'kv-keep', to: 'auth/x' }, 'cannot remount to destination "auth/x/"'],
      [{ from: 'auth/token', to: 'auth/t2' }, 'cannot remount "auth/token/"'],
      [{ from: 'auth/ar', to: 'auth/token' }, 'cannot remount to destination "auth/token/"'],
      [{ from: 'auth/ar', to: 'ar' }, 'cannot remount auth mount to non-auth mount "ar/"'],
      [{ from: 'nothing-here', to: 'x' }, 'no matching mount at "nothing-here/"'],
      [{ from: 'kv-keep/a', to: 'x' }, 'no matching mount at "kv-keep/a/"'],
      [{ from: 'kv-keep', to: 'secret' }, 'path already in use at "secret/"'],
      [{ from: 'kv-keep', to: 'secret/inner' }, 'path already in use at "secret/"'],
      [{ from: 'kv-keep', to: 'team' }, 'path already in use at "team/one/"'],
      [{ from: 'kv-keep', to: 'kv-keep' }, 'path already in use at "kv-keep/"'],
      [{ from: 'kv-keep', to: 'a/../b' }, 'invalid destination mount: invalid mount path "a/../b"'],
    ];
    for (const [body, message] of cases) {
      const res = await call('POST', 'sys/remount', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.deepEqual(res.body.errors, [message], JSON.stringify(body));
    }
    assert.equal((await call('GET', 'kv-keep/a')).body.data.v, '1');
    assert.equal((await call('GET', 'sys/remount/status/no-such-id')).status, 404);
  });

  it('moving an auth method keeps its roles and revokes the tokens it issued; new tokens lease under the new path', async () => {
    await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
    await writeOk(srv.api, 'auth/approle/role/web', { token_ttl: '1h', token_policies: 'default' });
    const roleId = (await call('GET', 'auth/approle/role/web/role-id')).body.data.role_id;
    const secretId = async (mount: string) =>
      (await call('POST', `auth/${mount}/role/web/secret-id`)).body.data.secret_id as string;
    const login = async (mount: string) => {
      const res = await call('POST', `auth/${mount}/login`, { role_id: roleId, secret_id: await secretId(mount) }, '');
      assert.equal(res.status, 200, res.text);
      return res.body.auth.client_token as string;
    };
    const oldToken = await login('approle');
    const leases = await call('LIST', 'sys/leases/lookup/auth/approle/login/');
    assert.equal(leases.status, 200, leases.text);
    assert.equal(leases.body.data.keys.length, 1);

    const moved = await remount('auth/approle', 'auth/ci');
    assert.equal(moved.status, 200, moved.text);
    assert.equal((await statusOf(moved.body.data.migration_id)).migration_info.target_mount, 'auth/ci/');
    // As in Vault: the tokens the method issued are revoked with their leases.
    assert.equal((await call('GET', 'auth/token/lookup-self', undefined, oldToken)).status, 403);
    assert.equal((await call('LIST', 'sys/leases/lookup/auth/approle/login/')).status, 404);
    assert.equal((await call('POST', 'auth/approle/login', { role_id: roleId })).status, 404);
    const auths = (await call('GET', 'sys/auth')).body.data;
    assert.ok(auths['ci/'] && !auths['approle/'], Object.keys(auths).join(','));

    // The role came along; a login at the new path leases its token under the new path, and renew and revoke work.
    const newToken = await login('ci');
    const self = await call('GET', 'auth/token/lookup-self', undefined, newToken);
    assert.equal(self.body.data.path, 'auth/ci/login');
    const underNew = await call('LIST', 'sys/leases/lookup/auth/ci/login/');
    assert.equal(underNew.body.data.keys.length, 1, underNew.text);
    assert.equal((await call('POST', 'auth/token/renew-self', { increment: '30m' }, newToken)).status, 200);
    assert.equal((await call('POST', 'sys/leases/revoke-prefix/auth/ci')).status, 204);
    assert.equal((await call('GET', 'auth/token/lookup-self', undefined, newToken)).status, 403);

    // Moved back where it was: the closing mark the first move left at the old path (for nodes that had not heard
    // yet) does not refuse its logins there now.
    assert.equal((await remount('auth/ci', 'auth/approle')).status, 200);
    const back = await login('approle');
    assert.equal((await call('GET', 'auth/token/lookup-self', undefined, back)).status, 200);
    assert.equal((await call('POST', 'sys/leases/revoke-prefix/auth/approle')).status, 204);
  });

  it('logins racing the move of their auth method leave no live token under the old path', async () => {
    await writeOk(srv.api, 'sys/auth/race-old', { type: 'approle' });
    await writeOk(srv.api, 'auth/race-old/role/r', { token_ttl: '1h', token_policies: 'default' });
    const roleId = (await call('GET', 'auth/race-old/role/r/role-id')).body.data.role_id;
    const secretId = (await call('POST', 'auth/race-old/role/r/secret-id')).body.data.secret_id;
    const tokens: string[] = [];
    const loginLoop = async () => {
      for (let i = 0; i < 12; i++) {
        const res = await call('POST', 'auth/race-old/login', { role_id: roleId, secret_id: secretId }, '');
        if (res.status === 200) tokens.push(res.body.auth.client_token);
      }
    };
    const logins = Array.from({ length: 6 }, loginLoop);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const moved = await remount('auth/race-old', 'auth/race-new');
    await Promise.all(logins);
    assert.equal(moved.status, 200, moved.text);
    assert.ok(tokens.length > 0, 'some logins got through before the move');
    let live = 0;
    for (const token of tokens) {
      const self = await call('GET', 'auth/token/lookup-self', undefined, token);
      if (self.status === 403) continue; // revoked with the old mount's leases
      assert.equal(self.status, 200, self.text);
      assert.equal(self.body.data.path, 'auth/race-new/login', 'a live token belongs to the moved method');
      live++;
    }
    assert.equal((await call('LIST', 'sys/leases/lookup/auth/race-old/')).status, 404);
    // Every live token is under the new prefix, so revoking it there revokes them all.
    assert.equal((await call('POST', 'sys/leases/revoke-prefix/auth/race-new')).status, 204);
    for (const token of tokens) {
      assert.equal((await call('GET', 'auth/token/lookup-self', undefined, token)).status, 403, `${live} live`);
    }
  });

  it('needs sudo on sys/remount, as Vault; status needs read on it', async () => {
    await writeOk(srv.api, 'sys/mounts/kv-guarded', { type: 'kv' });
    const noSudo = await tokenWith('path "sys/remount" {\n  capabilities = ["create", "update"]\n}\n');
    const refused = await remount('kv-guarded', 'kv-taken', noSudo);
    assert.equal(refused.status, 403, refused.text);
    assert.ok((await call('GET', 'sys/mounts/kv-guarded')).status === 200);
    // A token that may not use sys/remount at all learns nothing about the mounts, not even what exists.
    const nothing = await tokenWith('path "kv-guarded/*" {\n  capabilities = ["read"]\n}\n');
    const probe = await remount('no-such', 'x', nothing);
    assert.equal(probe.status, 403, probe.text);

    const sudo = await tokenWith(
      'path "sys/remount" {\n  capabilities = ["update", "sudo"]\n}\npath "sys/remount/status/*" {\n  capabilities = ["read"]\n}\n',
    );
    const ok = await remount('kv-guarded', 'kv-taken', sudo);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await call('GET', `sys/remount/status/${ok.body.data.migration_id}`, undefined, sudo)).status, 200);
    assert.equal((await call('GET', `sys/remount/status/${ok.body.data.migration_id}`, undefined, noSudo)).status, 403);
  });

  it('a move racing writes loses nothing: every acknowledged write is at the new path', async () => {
    await writeOk(srv.api, 'sys/mounts/busy', { type: 'kv', options: { version: '2' } });
    await writeOk(srv.api, 'busy/data/seed', { data: { v: 'seed' } });
    const acknowledged: string[] = [];
    const writer = async (n: number) => {
      for (let i = 0; i < 15; i++) {
        const key = `w${n}-${i}`;
        const res = await call('POST', `busy/data/${key}`, { data: { v: key } });
        if (res.status === 200) acknowledged.push(key);
        else assert.equal(res.status, 404, `a write either lands or finds no mount: ${res.text}`);
        const moved = await call('POST', `busy-moved/data/${key}`, { data: { v: key } });
        if (moved.status === 200) acknowledged.push(key);
      }
    };
    const writers = Array.from({ length: 6 }, (_, n) => writer(n));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const res = await remount('busy', 'busy-moved');
    await Promise.all(writers);
    assert.equal(res.status, 200, res.text);
    assert.equal((await statusOf(res.body.data.migration_id)).migration_info.status, 'success');
    assert.ok(acknowledged.length > 0);
    for (const key of ['seed', ...acknowledged]) {
      const read = await call('GET', `busy-moved/data/${key}`);
      assert.equal(read.status, 200, `${key} was acknowledged but is gone: ${read.text}`);
      assert.equal(read.body.data.data.v, key === 'seed' ? 'seed' : key);
    }
  });

  it('a move that fails midway leaves the mount where it was, with its data, and reports failure', async () => {
    await writeOk(srv.api, 'sys/mounts/stuck', { type: 'kv' });
    await writeOk(srv.api, 'stuck/keep', { v: 'kept' });
    // A lease whose revocation fails, as a database credential's does while its database is down.
    const stuck = srv.cofre.core.mounts.get('mounts', 'stuck');
    assert.ok(stuck);
    stuck.backend.secrets = {
      unreachable: {
        revoke: () => Promise.reject(new Error('cannot reach the database')),
      },
    };
    const issue = (requestPath: string) =>
      srv.cofre.core.expiration.register({
        mountPrefix: 'stuck/',
        requestPath,
        secret: { type: 'unreachable', internal: {}, ttl: 3600, maxTtl: 3600, renewable: false },
        ttl: 3600,
        maxTtl: 3600,
        tokenHash: '',
        tokenExpireTime: 0,
      });
    const lease = await issue('creds/x');
    const res = await remount('stuck', 'unstuck');
    assert.equal(res.status, 200, res.text);
    assert.equal((await statusOf(res.body.data.migration_id)).migration_info.status, 'failure');
    assert.match(res.body.warnings.join('\n'), /could not be revoked/);
    assert.equal((await call('GET', 'stuck/keep')).body.data.v, 'kept');
    assert.equal((await call('GET', 'unstuck/keep')).status, 404);
    assert.equal((await call('GET', 'sys/mounts/unstuck')).status, 400);
    // The mount stayed, so it issues leases again: the failed move took its closing mark away.
    const after = await issue('creds/y');
    assert.equal((await call('POST', `sys/leases/revoke-force/${after.leaseId}`)).status, 204);

    // Once the lease is dealt with, the move goes through; the store says so too after a restart of the tables.
    assert.equal((await call('POST', `sys/leases/revoke-force/${lease.leaseId}`)).status, 204);
    assert.equal((await remount('stuck', 'unstuck')).status, 200);
    await srv.cofre.core.reloadMounts();
    assert.equal((await call('GET', 'unstuck/keep')).body.data.v, 'kept');
    assert.equal((await call('GET', 'stuck/keep')).status, 404);
  });

  it('`cofre secrets move` and `cofre auth move` print what Vault’s CLI prints', async () => {
    await writeOk(srv.api, 'sys/mounts/cli-a', { type: 'kv' });
    await writeOk(srv.api, 'cli-a/k', { v: 'cli' });
    const secrets = await runCli(srv.url, srv.rootToken, 'secrets', 'move', 'cli-a', 'cli-b');
    assert.equal(secrets.code, 0, secrets.out);
    const id = /with migration ID ([0-9a-f-]{36})/.exec(secrets.out)?.[1];
    assert.ok(id, secrets.out);
    assert.equal(
      secrets.out,
      `Started moving secrets engine cli-a/ to cli-b/, with migration ID ${id}\n` +
        `Success! Finished moving secrets engine cli-a/ to cli-b/, with migration ID ${id}\n`,
    );
    assert.equal((await call('GET', 'cli-b/k')).body.data.v, 'cli');

    await writeOk(srv.api, 'sys/auth/up', { type: 'userpass' });
    const auth = await runCli(srv.url, srv.rootToken, 'auth', 'move', 'auth/up', 'auth/people');
    assert.equal(auth.code, 0, auth.out);
    assert.match(auth.out, /^Started moving auth method auth\/up\/ to auth\/people\/, with migration ID /);
    assert.match(auth.out, /Success! Finished moving auth method auth\/up\/ to auth\/people\/, with migration ID /);

    const refused = await runCli(srv.url, srv.rootToken, 'secrets', 'move', 'sys', 'elsewhere');
    assert.equal(refused.code, 2, refused.out);
    assert.match(refused.out, /^Error moving secrets engine sys\/ to elsewhere\/: [\s\S]*cannot remount "sys\/"/);
  });
});

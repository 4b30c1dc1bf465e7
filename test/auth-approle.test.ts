import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodeVault from 'node-vault';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { enableFileAudit, startServer, writeOk, type InProcessServer } from './support.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The AppRole auth method through the HTTP API, as Vault's clients use it. */
describe('AppRole auth method', () => {
  let srv: InProcessServer;

  const call = (method: string, path: string, body?: unknown, token?: string) =>
    srv.api.call(method, path, { ...(body !== undefined ? { body } : {}), ...(token !== undefined ? { token } : {}) });
  const login = (role_id: string, secret_id?: string) =>
    call('POST', 'auth/approle/login', secret_id === undefined ? { role_id } : { role_id, secret_id }, '');
  const roleId = async (role: string): Promise<string> => {
    const res = await call('GET', `auth/approle/role/${role}/role-id`);
    assert.equal(res.status, 200, res.text);
    return res.body.data.role_id;
  };
  const newSecretId = async (role: string, body: unknown = {}) => {
    const res = await call('POST', `auth/approle/role/${role}/secret-id`, body);
    assert.equal(res.status, 200, res.text);
    return res.body.data as {
      secret_id: string;
      secret_id_accessor: string;
      secret_id_ttl: number;
      secret_id_num_uses: number;
    };
  };

  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
    await writeOk(srv.api, 'sys/policies/acl/app-read', {
      policy: 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n',
    });
    await writeOk(srv.api, 'secret/data/app/db', { data: { password: 'from-cofre' } });
    await writeOk(srv.api, 'secret/data/other/db', { data: { password: 'not-for-app' } });
  });

  after(() => srv?.stop());

  it('the Vault login flow over HTTP: role, role-id, secret-id, login, and the token reads what its policies allow', async () => {
    await writeOk(srv.api, 'auth/approle/role/web', {
      token_policies: 'app-read',
      token_ttl: '1h',
      secret_id_ttl: '10m',
    });
    const role = await call('GET', 'auth/approle/role/web');
    assert.equal(role.status, 200, role.text);
    assert.equal(role.body.data.bind_secret_id, true);
    assert.deepEqual(role.body.data.token_policies, ['app-read']);
    assert.equal(role.body.data.token_ttl, 3600);
    assert.equal(role.body.data.secret_id_ttl, 600);
    assert.equal(role.body.data.role_id, undefined, 'a role read does not show the role ID');
    const list = await call('LIST', 'auth/approle/role');
    assert.ok(list.body.data.keys.includes('web'), list.text);

    const id = await roleId('web');
    assert.match(id, /^[0-9a-f-]{36}$/);
    const secret = await newSecretId('web', { metadata: JSON.stringify({ team: 'payments' }) });
    assert.match(secret.secret_id, /^[0-9a-f-]{36}$/);
    assert.equal(secret.secret_id_ttl, 600);
    assert.equal(secret.secret_id_num_uses, 0);

    const res = await login(id, secret.secret_id);
    assert.equal(res.status, 200, res.text);
    const auth = res.body.auth;
    assert.deepEqual(auth.policies, ['app-read', 'default']);
    assert.deepEqual(auth.metadata, { role_name: 'web', team: 'payments' });
    assert.ok(auth.lease_duration > 3500 && auth.lease_duration <= 3600, String(auth.lease_duration));
    assert.equal(auth.renewable, true);
    const read = await call('GET', 'secret/data/app/db', undefined, auth.client_token);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.body.data.data.password, 'from-cofre');
    assert.equal((await call('GET', 'secret/data/other/db', undefined, auth.client_token)).status, 403);
    const self = await call('GET', 'auth/token/lookup-self', undefined, auth.client_token);
    assert.equal(self.body.data.display_name, 'approle-web');
    assert.equal(self.body.data.path, 'auth/approle/login');

    // The secret ID's properties, by itself and by its accessor; never the secret ID.
    const lookup = await call('POST', 'auth/approle/role/web/secret-id/lookup', { secret_id: secret.secret_id });
    assert.equal(lookup.status, 200, lookup.text);
    assert.equal(lookup.body.data.secret_id_accessor, secret.secret_id_accessor);
    assert.deepEqual(lookup.body.data.metadata, { team: 'payments' });
    assert.ok(!lookup.text.includes(secret.secret_id));
    const byAccessor = await call('POST', 'auth/approle/role/web/secret-id-accessor/lookup', {
      secret_id_accessor: secret.secret_id_accessor,
    });
    assert.equal(byAccessor.status, 200, byAccessor.text);
    assert.equal(byAccessor.body.data.secret_id_ttl, 600);
    const accessors = await call('LIST', 'auth/approle/role/web/secret-id');
    assert.deepEqual(accessors.body.data.keys, [secret.secret_id_accessor]);
  });

  it('node-vault: the role, its role ID, a secret ID and approleLogin, then reads with the token', async () => {
    const vault = nodeVault({ apiVersion: 'v1', endpoint: srv.url, token: srv.rootToken });
    await vault.addApproleRole({ role_name: 'nv', policies: 'app-read' });
    assert.deepEqual((await vault.getApproleRole({ role_name: 'nv' })).data.token_policies, ['app-read']);
    const { data: idData } = await vault.getApproleRoleId({ role_name: 'nv' });
    const { data: secretData } = await vault.getApproleRoleSecret({ role_name: 'nv', metadata: '{"host":"ci-7"}' });
    const looked = await vault.approleSecretLookup({ role_name: 'nv', secret_id: secretData.secret_id });
    assert.deepEqual(looked.data.metadata, { host: 'ci-7' });
    const result = await vault.approleLogin({ role_id: idData.role_id, secret_id: secretData.secret_id });
    assert.deepEqual(result.auth.metadata, { host: 'ci-7', role_name: 'nv' });
    // approleLogin is a token source: the client now holds the AppRole token.
    assert.equal(vault.token, result.auth.client_token);
    assert.equal((await vault.read('secret/data/app/db')).data.data.password, 'from-cofre');
    await assert.rejects(
      vault.read('secret/data/other/db'),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 403,
    );
    await assert.rejects(
      vault.approleLogin({ role_id: idData.role_id, secret_id: 'not-the-secret' }),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 400,
    );
  });

  it('a secret ID with num_uses=1 logs in once, and exactly once under 20 concurrent logins', async () => {
    await writeOk(srv.api, 'auth/approle/role/once', { token_policies: 'app-read', secret_id_num_uses: 1 });
    const id = await roleId('once');
    const first = await newSecretId('once');
    assert.equal(first.secret_id_num_uses, 1);
    assert.equal((await login(id, first.secret_id)).status, 200);
    const again = await login(id, first.secret_id);
    assert.equal(again.status, 400, again.text);
    // Used up: gone with its accessor.
    const gone = await call('POST', 'auth/approle/role/once/secret-id/lookup', { secret_id: first.secret_id });
    assert.equal(gone.status, 204, gone.text);

    const raced = await newSecretId('once');
    const results = await Promise.all(Array.from({ length: 20 }, () => login(id, raced.secret_id)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, ...Array<number>(19).fill(400)], statuses.join(','));

    // A per-secret num_uses below the role's: three logins, not four.
    await writeOk(srv.api, 'auth/approle/role/thrice', { secret_id_num_uses: 5 });
    const thrice = await newSecretId('thrice', { num_uses: 3 });
    const threeId = await roleId('thrice');
    const many = await Promise.all(Array.from({ length: 8 }, () => login(threeId, thrice.secret_id)));
    assert.equal(many.filter((r) => r.status === 200).length, 3);
    const tooMany = await call('POST', 'auth/approle/role/thrice/secret-id', { num_uses: 6 });
    assert.equal(tooMany.status, 400, tooMany.text);
    const unlimited = await call('POST', 'auth/approle/role/thrice/secret-id', { num_uses: 0 });
    assert.equal(unlimited.status, 400, 'an unlimited secret ID of a limited role');
  });

  it('CIDR bindings of the secret ID and of the role: refused from 127.0.0.1 outside them, accepted inside', async () => {
    await writeOk(srv.api, 'auth/approle/role/bound', { token_policies: 'app-read' });
    const id = await roleId('bound');
    const elsewhere = await newSecretId('bound', { cidr_list: '10.0.0.0/8' });
    const refused = await login(id, elsewhere.secret_id);
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.text, /unauthorized by CIDR restrictions on the secret ID/);
    assert.ok(!refused.text.includes(elsewhere.secret_id));
    const local = await newSecretId('bound', { cidr_list: ['127.0.0.0/8'] });
    assert.equal((await login(id, local.secret_id)).status, 200);
    // A refused address took no use.
    await writeOk(srv.api, 'auth/approle/role/bound-once', { secret_id_num_uses: 1 });
    const onceId = await roleId('bound-once');
    const remote = await newSecretId('bound-once', { cidr_list: '10.0.0.0/8' });
    assert.equal((await login(onceId, remote.secret_id)).status, 400);
    const still = await call('POST', 'auth/approle/role/bound-once/secret-id/lookup', { secret_id: remote.secret_id });
    assert.equal(still.body.data.secret_id_num_uses, 1);

    // The role's own binding applies to every secret ID, whatever its cidr_list.
    await writeOk(srv.api, 'auth/approle/role/role-bound', { secret_id_bound_cidrs: ['10.0.0.0/8'] });
    const roleBoundId = await roleId('role-bound');
    const inside = await newSecretId('role-bound', { cidr_list: '10.1.0.0/16' });
    const byRole = await login(roleBoundId, inside.secret_id);
    assert.equal(byRole.status, 400, byRole.text);
    assert.match(byRole.text, /unauthorized by CIDR restrictions on the role/);
    const outside = await call('POST', 'auth/approle/role/role-bound/secret-id', { cidr_list: '127.0.0.0/8' });
    assert.equal(outside.status, 400, 'a secret ID bound outside its role');
    await writeOk(srv.api, 'auth/approle/role/role-bound', { secret_id_bound_cidrs: '127.0.0.0/8' });
    assert.equal((await login(roleBoundId, (await newSecretId('role-bound')).secret_id)).status, 200);

    // A role that binds no secret ID still needs the address.
    await writeOk(srv.api, 'auth/approle/role/no-secret', {
      bind_secret_id: false,
      secret_id_bound_cidrs: '10.0.0.0/8',
    });
    assert.equal((await login(await roleId('no-secret'))).status, 400);
    await writeOk(srv.api, 'auth/approle/role/no-secret', { secret_id_bound_cidrs: '127.0.0.1/32' });
    const open = await login(await roleId('no-secret'));
    assert.equal(open.status, 200, open.text);
    const noConstraint = await call('POST', 'auth/approle/role/no-constraint', { bind_secret_id: false });
    assert.equal(noConstraint.status, 400, noConstraint.text);

    // token_bound_cidrs of the secret ID bind the token it logs in to.
    const tokenBound = await newSecretId('bound', { token_bound_cidrs: '10.0.0.0/8' });
    const bound = await login(id, tokenBound.secret_id);
    assert.equal(bound.status, 200, bound.text);
    assert.equal((await call('GET', 'secret/data/app/db', undefined, bound.body.auth.client_token)).status, 403);
  });

  it("a secret ID's TTL is capped by the mount's max TTL, as Vault's", async () => {
    await writeOk(srv.api, 'sys/auth/capped', { type: 'approle', config: { max_lease_ttl: '1h' } });
    await writeOk(srv.api, 'auth/capped/role/long', { secret_id_ttl: '2h' });
    const res = await call('POST', 'auth/capped/role/long/secret-id', {});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.secret_id_ttl, 3600);
    const lookup = await call('POST', 'auth/capped/role/long/secret-id/lookup', { secret_id: res.body.data.secret_id });
    const lifetime = Date.parse(lookup.body.data.expiration_time) - Date.parse(lookup.body.data.creation_time);
    assert.equal(lifetime, 3600_000);
    // Mounts are separate: the secret ID is nothing on another AppRole mount.
    await writeOk(srv.api, 'auth/approle/role/long', { secret_id_ttl: '2h' });
    assert.equal((await login(await roleId('long'), res.body.data.secret_id)).status, 400);
    assert.equal((await newSecretId('long')).secret_id_ttl, 7200, 'the other mount keeps the system max');
  });

  it('an expired secret ID is refused, and tidy removes expired ones', async () => {
    await writeOk(srv.api, 'auth/approle/role/short', { token_policies: 'app-read', secret_id_ttl: '1s' });
    const id = await roleId('short');
    const soon = await newSecretId('short');
    const later = await newSecretId('short');
    assert.equal(soon.secret_id_ttl, 1);
    await sleep(1300);
    const res = await login(id, soon.secret_id);
    assert.equal(res.status, 400, res.text);
    assert.ok(!res.text.includes(soon.secret_id));
    const tidy = await call('POST', 'auth/approle/tidy/secret-id');
    assert.equal(tidy.status, 202, tidy.text);
    const left = await call('LIST', 'auth/approle/role/short/secret-id');
    assert.equal(left.status, 404, `expired secret IDs are gone: ${left.text}`);
    assert.equal((await login(id, later.secret_id)).status, 400);
  });

  it('a destroyed secret ID is refused, by secret ID and by accessor; deleting the role takes its secret IDs', async () => {
    await writeOk(srv.api, 'auth/approle/role/gone', { token_policies: 'app-read' });
    const id = await roleId('gone');
    const a = await newSecretId('gone');
    const b = await newSecretId('gone');
    const c = await newSecretId('gone');
    assert.equal(
      (await call('POST', 'auth/approle/role/gone/secret-id/destroy', { secret_id: a.secret_id })).status,
      204,
    );
    assert.equal((await login(id, a.secret_id)).status, 400);
    const byAccessor = await call('POST', 'auth/approle/role/gone/secret-id-accessor/destroy', {
      secret_id_accessor: b.secret_id_accessor,
    });
    assert.equal(byAccessor.status, 204, byAccessor.text);
    assert.equal((await login(id, b.secret_id)).status, 400);
    assert.equal((await login(id, c.secret_id)).status, 200);

    // An accessor of another role is not found through this role's path.
    await writeOk(srv.api, 'auth/approle/role/other', {});
    const foreign = await call('POST', 'auth/approle/role/other/secret-id-accessor/destroy', {
      secret_id_accessor: c.secret_id_accessor,
    });
    assert.equal(foreign.status, 404, foreign.text);
    assert.equal((await login(id, c.secret_id)).status, 200);

    // A role deleted and created again under the same name: the old secret IDs and role ID are gone.
    assert.equal((await call('DELETE', 'auth/approle/role/gone')).status, 204);
    assert.equal((await login(id, c.secret_id)).status, 400);
    await writeOk(srv.api, 'auth/approle/role/gone', { token_policies: 'app-read' });
    assert.equal((await login(await roleId('gone'), c.secret_id)).status, 400);
  });

  it('a wrong role ID or secret ID is a 400 that echoes nothing it was sent', async () => {
    await writeOk(srv.api, 'auth/approle/role/strict', { token_policies: 'app-read' });
    const id = await roleId('strict');
    const secret = await newSecretId('strict');
    const wrongSecret = 'f0f0f0f0-1111-2222-3333-444444444444';
    const wrongRole = 'a1a1a1a1-5555-6666-7777-888888888888';
    const cases = [
      await login(id, wrongSecret),
      await login(wrongRole, secret.secret_id),
      await login(wrongRole, wrongSecret),
      await login(id, `${secret.secret_id}x`),
    ];
    for (const res of cases) {
      assert.equal(res.status, 400, res.text);
      assert.deepEqual(res.body.errors, ['invalid role or secret ID']);
      for (const sent of [id, secret.secret_id, wrongSecret, wrongRole]) assert.ok(!res.text.includes(sent), res.text);
    }
    assert.deepEqual((await login(id)).body.errors, ['missing secret_id']);
    assert.deepEqual((await login('')).body.errors, ['missing role_id']);
    // Another role's secret ID does not log in with this role ID.
    await writeOk(srv.api, 'auth/approle/role/strict2', {});
    const theirs = await newSecretId('strict2');
    assert.equal((await login(id, theirs.secret_id)).status, 400);
    // The secret ID still works after all that.
    assert.equal((await login(id, secret.secret_id)).status, 200);
  });

  it('a custom role ID logs in, must be unique, and the old one stops working; custom secret IDs too', async () => {
    await writeOk(srv.api, 'auth/approle/role/custom', { role_id: 'my-role-id', token_policies: 'app-read' });
    assert.equal(await roleId('custom'), 'my-role-id');
    const custom = await call('POST', 'auth/approle/role/custom/custom-secret-id', { secret_id: 'my-secret-id' });
    assert.equal(custom.status, 200, custom.text);
    assert.equal((await login('my-role-id', 'my-secret-id')).status, 200);
    const dup = await call('POST', 'auth/approle/role/custom/custom-secret-id', { secret_id: 'my-secret-id' });
    assert.equal(dup.status, 400, dup.text);
    await writeOk(srv.api, 'auth/approle/role/custom/role-id', { role_id: 'renamed-role-id' });
    assert.equal((await login('my-role-id', 'my-secret-id')).status, 400);
    assert.equal((await login('renamed-role-id', 'my-secret-id')).status, 200);
    const taken = await call('POST', 'auth/approle/role/web/role-id', { role_id: 'renamed-role-id' });
    assert.equal(taken.status, 400, taken.text);
    assert.match(taken.text, /role_id already in use/);
  });

  it("Vault's per-field role paths read, set and reset one property; a policy change stops renewals", async () => {
    await writeOk(srv.api, 'auth/approle/role/fields', { token_policies: 'app-read', secret_id_num_uses: 2 });
    const read = async (field: string) => (await call('GET', `auth/approle/role/fields/${field}`)).body.data;
    assert.deepEqual(await read('secret-id-num-uses'), { secret_id_num_uses: 2 });
    await writeOk(srv.api, 'auth/approle/role/fields/secret-id-num-uses', { secret_id_num_uses: 1 });
    assert.equal((await newSecretId('fields')).secret_id_num_uses, 1);
    await writeOk(srv.api, 'auth/approle/role/fields/secret-id-ttl', { secret_id_ttl: '2m' });
    assert.deepEqual(await read('secret-id-ttl'), { secret_id_ttl: 120 });
    assert.deepEqual(await read('policies'), { token_policies: ['app-read'], policies: ['app-read'] });
    assert.deepEqual(await read('local-secret-ids'), { local_secret_ids: false });
    const missing = await call('POST', 'auth/approle/role/fields/token-ttl', {});
    assert.equal(missing.status, 400, missing.text);
    const noRole = await call('POST', 'auth/approle/role/nobody/token-ttl', { token_ttl: 60 });
    assert.equal(noRole.status, 400, noRole.text);
    // The last constraint cannot go.
    const unbound = await call('POST', 'auth/approle/role/fields/bind-secret-id', { bind_secret_id: false });
    assert.equal(unbound.status, 400, unbound.text);
    assert.match(unbound.text, /at least one constraint/);
    assert.deepEqual(await read('bind-secret-id'), { bind_secret_id: true });

    // A token logged in under the role's policies is not renewed once they change.
    const res = await login(await roleId('fields'), (await newSecretId('fields')).secret_id);
    const token = res.body.auth.client_token;
    assert.equal((await call('POST', 'auth/token/renew-self', {}, token)).status, 200);
    assert.equal((await call('DELETE', 'auth/approle/role/fields/policies')).status, 204);
    assert.deepEqual(await read('policies'), { token_policies: [], policies: [] });
    const refused = await call('POST', 'auth/token/renew-self', {}, token);
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.body.errors[0], /policies of role "fields" have changed/);
  });

  it('renewing a token is refused once its role is deleted', async () => {
    await writeOk(srv.api, 'auth/approle/role/renewer', { token_policies: 'app-read', token_ttl: '10m' });
    const res = await login(await roleId('renewer'), (await newSecretId('renewer')).secret_id);
    const token = res.body.auth.client_token;
    const renewed = await call('POST', 'auth/token/renew-self', { increment: '5m' }, token);
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal((await call('DELETE', 'auth/approle/role/renewer')).status, 204);
    const refused = await call('POST', 'auth/token/renew-self', { increment: '5m' }, token);
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.text, /no longer exists/);
    const byRoot = await call('POST', 'auth/token/renew', { token });
    assert.equal(byRoot.status, 400, byRoot.text);
    // A new role of the same name and policies is another role: the token stays unrenewable.
    await writeOk(srv.api, 'auth/approle/role/renewer', { token_policies: 'app-read', token_ttl: '10m' });
    const again = await call('POST', 'auth/token/renew-self', { increment: '5m' }, token);
    assert.equal(again.status, 400, again.text);
  });

  it('a limited token probing AppRole paths it may not use gets 403, never 400 or 404', async () => {
    const child = await call('POST', 'auth/token/create', { policies: ['app-read'], ttl: '10m' });
    const token = child.body.auth.client_token;
    const probes: [string, string, unknown?][] = [
      ['LIST', 'auth/approle/role'],
      ['GET', 'auth/approle/role/web'],
      ['GET', 'auth/approle/role/no-such-role'],
      ['POST', 'auth/approle/role/new-role', { token_policies: 'root' }],
      ['DELETE', 'auth/approle/role/web'],
      ['GET', 'auth/approle/role/web/role-id'],
      ['POST', 'auth/approle/role/web/role-id', { role_id: 'mine' }],
      ['POST', 'auth/approle/role/web/secret-id', {}],
      ['POST', 'auth/approle/role/web/secret-id', { num_uses: 'not-a-number' }],
      ['LIST', 'auth/approle/role/web/secret-id'],
      ['POST', 'auth/approle/role/web/secret-id/lookup', { secret_id: 'x' }],
      ['POST', 'auth/approle/role/web/secret-id-accessor/destroy', { secret_id_accessor: 'x' }],
      ['POST', 'auth/approle/role/web/custom-secret-id', { secret_id: 'mine' }],
      ['POST', 'auth/approle/tidy/secret-id'],
      ['POST', 'auth/approle/role/bad name!/secret-id', {}],
      ['GET', `auth/approle/role/${'x'.repeat(5000)}`],
      ['GET', 'auth/approle/no-such-path'],
    ];
    for (const [method, path, body] of probes) {
      const res = await call(method, path, body, token);
      assert.equal(res.status, 403, `${method} ${path.slice(0, 60)}: ${res.status} ${res.text.slice(0, 200)}`);
    }
    // What the policy allows still works with the same token.
    assert.equal((await call('GET', 'secret/data/app/db', undefined, token)).status, 200);
  });

  it('crafted role names and values: .., constructor, __proto__, very long strings get a clean 4xx', async () => {
    for (const path of ['auth/approle/role/..', 'auth/approle/role/../role-id', 'auth/approle/role/%2e%2e/secret-id']) {
      const res = await call('POST', path, {});
      assert.ok(res.status >= 400 && res.status < 500, `${path}: ${res.status} ${res.text}`);
    }
    for (const name of ['bad name', 'a/b', 'ünïcode', '-leading', 'trailing.', 'a%00b']) {
      const res = await call('POST', `auth/approle/role/${encodeURIComponent(name)}`, { token_policies: 'app-read' });
      assert.ok(res.status >= 400 && res.status < 500, `${name}: ${res.status} ${res.text}`);
    }
    const long = 'a'.repeat(5000);
    for (const [method, path, body] of [
      ['POST', `auth/approle/role/${long}`, {}],
      ['GET', `auth/approle/role/${long}`],
      ['POST', `auth/approle/role/${long}/secret-id`, {}],
      ['DELETE', `auth/approle/role/${long}`],
    ] as [string, string, unknown?][]) {
      const res = await call(method, path, body);
      assert.ok(res.status >= 400 && res.status < 500, `${method} long name: ${res.status} ${res.text.slice(0, 200)}`);
    }
    const longId = await call('POST', 'auth/approle/role/web/role-id', { role_id: long });
    assert.equal(longId.status, 400, longId.text.slice(0, 200));
    assert.equal((await login(long, long)).status, 400);
    assert.equal((await login(await roleId('web'), long)).status, 400);
    const longCustom = await call('POST', 'auth/approle/role/web/custom-secret-id', { secret_id: long });
    assert.equal(longCustom.status, 400);

    // Names that are properties of every JS object are plain names here.
    await writeOk(srv.api, 'auth/approle/role/constructor', { token_policies: 'app-read' });
    const ctor = await call('GET', 'auth/approle/role/constructor');
    assert.equal(ctor.status, 200, ctor.text);
    assert.deepEqual(ctor.body.data.token_policies, ['app-read']);
    const ctorLogin = await login(await roleId('constructor'), (await newSecretId('constructor')).secret_id);
    assert.equal(ctorLogin.status, 200, ctorLogin.text);
    for (const name of ['__proto__', 'toString', 'hasOwnProperty']) {
      assert.equal((await call('GET', `auth/approle/role/${name}`)).status, 404, name);
      assert.equal((await call('GET', `auth/approle/role/${name}/role-id`)).status, 404, name);
      assert.equal((await call('POST', `auth/approle/role/${name}/secret-id`, {})).status, 400, name);
    }
    for (const id of ['constructor', '__proto__', 'toString']) assert.equal((await login(id, id)).status, 400, id);

    // Metadata: a JSON object of strings; a __proto__ key is only a key.
    const meta = await call('POST', 'auth/approle/role/constructor/secret-id', {
      metadata: '{"__proto__": "x", "team": "a"}',
    });
    assert.equal(meta.status, 200, meta.text);
    const metaLogin = await login(await roleId('constructor'), meta.body.data.secret_id);
    assert.equal(metaLogin.body.auth.metadata.team, 'a');
    for (const bad of ['{"n": 1}', '[1,2]', '{not json', '{"a": {"b": "c"}}']) {
      const res = await call('POST', 'auth/approle/role/constructor/secret-id', { metadata: bad });
      assert.equal(res.status, 400, `${bad}: ${res.text}`);
    }
    const badCidr = await call('POST', 'auth/approle/role/constructor/secret-id', { cidr_list: '10.0.0.0/99' });
    assert.equal(badCidr.status, 400, badCidr.text);
    const negative = await call('POST', 'auth/approle/role/neg', { secret_id_num_uses: -1 });
    assert.equal(negative.status, 400, negative.text);
    assert.equal(srv.cofre.http.server.listening, true);
  });
  it('the audit log holds no secret ID, role ID or token in the clear (last: it turns auditing on)', async () => {
    const file = join(srv.dir, 'approle-audit.log');
    await enableFileAudit(srv.api, file);
    await writeOk(srv.api, 'auth/approle/role/audited', { token_policies: 'app-read', secret_id_num_uses: 1 });
    const id = await roleId('audited');
    const secret = await newSecretId('audited', { metadata: '{"k":"v"}' });
    const ok = await login(id, secret.secret_id);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await login(id, secret.secret_id)).status, 400);
    const log = readFileSync(file, 'utf8');
    assert.match(log, /auth\/approle\/login/);
    for (const value of [id, secret.secret_id, ok.body.auth.client_token]) assert.ok(!log.includes(value));
  });
});

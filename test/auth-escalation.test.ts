// Ways a limited administrator or token could get more than it was given, each refused as Vault refuses it. Every
// test here failed before its fix (a review of the auth methods, token creation and the ACL found them).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

describe('privilege escalation through auth methods and token creation', () => {
  let srv: InProcessServer;
  const policy = (name: string, hcl: string) => writeOk(srv.api, `sys/policies/acl/${name}`, { policy: hcl });
  const tokenWith = async (body: Record<string, unknown>, token?: string): Promise<string> => {
    const res = await srv.api.call('POST', 'auth/token/create', { body, ...(token ? { token } : {}) });
    assert.equal(res.status, 200, res.text);
    return res.body.auth.client_token as string;
  };
  const login = (user: string, password: string) =>
    srv.api.call('POST', `auth/userpass/login/${user}`, { token: '', body: { password } });

  before(async () => {
    srv = await startServer({ initialised: true });
    await writeOk(srv.api, 'sys/auth/userpass', { type: 'userpass' });
    await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
    await policy('reader', 'path "secret/data/*" { capabilities = ["read"] }');
  });
  after(() => srv.stop());

  it('a login never makes a root token, whatever policies its user or role was given', async () => {
    for (const [i, policies] of [['root'], [' ROOT'], ['reader', 'Root']].entries()) {
      await writeOk(srv.api, `auth/userpass/users/boss${i}`, { password: 'boss-pw-1', token_policies: policies });
      const res = await login(`boss${i}`, 'boss-pw-1');
      assert.equal(res.status, 400, `${JSON.stringify(policies)}: ${res.text}`);
      assert.match(res.text, /auth methods cannot create root tokens/);
    }
    await writeOk(srv.api, 'auth/approle/role/boss', { token_policies: ['root'] });
    const roleId = (await srv.api.call('GET', 'auth/approle/role/boss/role-id')).body.data.role_id as string;
    const secretId = (await srv.api.call('POST', 'auth/approle/role/boss/secret-id')).body.data.secret_id as string;
    const res = await srv.api.call('POST', 'auth/approle/login', {
      token: '',
      body: { role_id: roleId, secret_id: secretId },
    });
    assert.equal(res.status, 400, res.text);
  });

  it('a parameter constraint on policy names holds whatever their case or spaces', async () => {
    await policy(
      'user-admin',
      [
        'path "auth/userpass/users/*" {',
        '  capabilities = ["create", "update"]',
        '  denied_parameters = { "token_policies" = ["admin", "root"] }',
        '}',
        'path "auth/token/create" {',
        '  capabilities = ["update"]',
        '  allowed_parameters = { "policies" = ["reader"], "*" = [] }',
        '}',
      ].join('\n'),
    );
    await policy('admin', 'path "sys/*" { capabilities = ["read", "list"] }');
    const token = await tokenWith({ policies: ['user-admin', 'reader'] });
    for (const policies of [['Admin'], [' admin'], ['ROOT'], 'reader, ADMIN']) {
      const res = await srv.api.call('POST', 'auth/userpass/users/sneaky', {
        token,
        body: { password: 'sneaky-pw-1', token_policies: policies },
      });
      assert.equal(res.status, 403, `${JSON.stringify(policies)}: ${res.text}`);
    }
    const allowed = await srv.api.call('POST', 'auth/userpass/users/fine', {
      token,
      body: { password: 'fine-pw-1', token_policies: ['Reader'] },
    });
    assert.equal(allowed.status, 204, allowed.text);
    // An allowed value is matched the same way: " READER " is "reader"; " Admin" is not allowed.
    const child = await srv.api.call('POST', 'auth/token/create', { token, body: { policies: [' READER '] } });
    assert.equal(child.status, 200, child.text);
    const refused = await srv.api.call('POST', 'auth/token/create', { token, body: { policies: [' Admin'] } });
    assert.equal(refused.status, 403, refused.text);
  });

  it('a token renewed again and again still ends at its max TTL from its creation', async () => {
    await writeOk(srv.api, 'sys/mounts/auth/token/tune', { max_lease_ttl: '4s' });
    try {
      const token = await tokenWith({ policies: ['reader'], ttl: '2s' });
      const created = Date.now();
      let last = 0;
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const res = await srv.api.call('POST', 'auth/token/renew-self', { token, body: { increment: '4s' } });
        if (res.status !== 200) break;
        last = Date.now() + (res.body.auth.lease_duration as number) * 1000;
      }
      // Each renewal used to allow another 4 s from then, so the token never had to end.
      assert.ok(last <= created + 4000 + 1500, `renewed to ${last - created} ms after its creation`);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, created + 5500 - Date.now())));
      assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 403);
    } finally {
      await writeOk(srv.api, 'sys/mounts/auth/token/tune', { max_lease_ttl: '0' });
    }
  });

  it('a child gets the default policy only if its parent has it, or its creator is privileged', async () => {
    await policy('ci', 'path "auth/token/create" { capabilities = ["update"] }');
    const parent = await tokenWith({ policies: ['ci'], no_default_policy: true });
    const child = await srv.api.call('POST', 'auth/token/create', { token: parent, body: { policies: ['ci'] } });
    assert.equal(child.status, 200, child.text);
    assert.deepEqual(child.body.auth.policies, ['ci']);
    // A parent that has it hands it on, as before.
    const withDefault = await tokenWith({ policies: ['ci'] });
    const second = await srv.api.call('POST', 'auth/token/create', { token: withDefault, body: { policies: ['ci'] } });
    assert.deepEqual([...second.body.auth.policies].sort(), ['ci', 'default']);
  });
});

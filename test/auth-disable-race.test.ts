import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

/**
 * Disabling an auth method revokes every token it issued, logins under way included: a token whose lease is
 * registered after the method is gone must not outlive it (it would be a live token no revocation names).
 */
describe('disabling an auth method while logins run', () => {
  let srv: InProcessServer;

  const call = (method: string, path: string, body?: unknown, token?: string) =>
    srv.api.call(method, path, { ...(body !== undefined ? { body } : {}), ...(token !== undefined ? { token } : {}) });

  before(async () => {
    srv = await startServer();
  });
  after(() => srv?.stop());

  it('leaves no live token from any login that raced it, over several rounds', async () => {
    let issued = 0;
    let refused = 0;
    for (let round = 0; round < 4; round++) {
      const mount = `gone-${round}`;
      await writeOk(srv.api, `sys/auth/${mount}`, { type: 'approle' });
      await writeOk(srv.api, `auth/${mount}/role/r`, { token_ttl: '1h', token_policies: 'default' });
      const roleId = (await call('GET', `auth/${mount}/role/r/role-id`)).body.data.role_id;
      const secretId = (await call('POST', `auth/${mount}/role/r/secret-id`)).body.data.secret_id;
      const tokens: string[] = [];
      const loginLoop = async () => {
        for (let i = 0; i < 15; i++) {
          const res = await call('POST', `auth/${mount}/login`, { role_id: roleId, secret_id: secretId }, '');
          if (res.status === 200) tokens.push(res.body.auth.client_token);
          else {
            // Refused because the method is going or gone: a clear 4xx, never a 500.
            assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.text}`);
            refused++;
          }
        }
      };
      const logins = Array.from({ length: 6 }, loginLoop);
      await new Promise((resolve) => setTimeout(resolve, 10 + round * 5));
      const disabled = await call('DELETE', `sys/auth/${mount}`);
      await Promise.all(logins);
      assert.equal(disabled.status, 204, disabled.text);
      issued += tokens.length;
      for (const token of tokens) {
        const self = await call('GET', 'auth/token/lookup-self', undefined, token);
        assert.equal(self.status, 403, `a token of the disabled method ${mount} is still live: ${self.text}`);
      }
      const leases = await call('LIST', `sys/leases/lookup/auth/${mount}/login/`);
      assert.equal(leases.status, 404, leases.text);
    }
    assert.ok(issued > 0, 'some logins got through before the disable');
    assert.ok(refused > 0, 'some logins ran after it');
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

describe('policies enforced over HTTP', () => {
  let srv: InProcessServer;
  let token = '';
  before(async () => {
    srv = await startServer();
    const policy = `
path "secret/data/team/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/team/admin" {
  capabilities = ["deny"]
}
path "secret/metadata/team/" {
  capabilities = ["list"]
}
`;
    const put = await srv.api.call('PUT', 'sys/policies/acl/team', { body: { policy } });
    assert.equal(put.status, 204, put.text);
    const t = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['team'] } });
    token = t.body.auth.client_token;
  });
  after(() => srv.stop());

  it('allows what the policy grants and denies the rest', async () => {
    assert.equal((await srv.api.call('POST', 'secret/data/team/a', { token, body: { data: { k: 'v' } } })).status, 200);
    assert.equal((await srv.api.call('GET', 'secret/data/team/a', { token })).status, 200);
    assert.equal(
      (await srv.api.call('POST', 'secret/data/team/admin', { token, body: { data: { k: 'v' } } })).status,
      403,
    );
    assert.equal((await srv.api.call('POST', 'secret/data/other', { token, body: { data: { k: 'v' } } })).status, 403);
    assert.equal((await srv.api.call('DELETE', 'secret/data/team/a', { token })).status, 403);
    assert.equal((await srv.api.call('LIST', 'secret/metadata/team', { token })).status, 200);
    assert.equal((await srv.api.call('GET', 'secret/metadata/team/a', { token })).status, 403);
    assert.equal(
      (
        await srv.api.call('PUT', 'sys/policies/acl/evil', {
          token,
          body: { policy: 'path "*" { capabilities = ["sudo"] }' },
        })
      ).status,
      403,
    );
  });

  it('a policy change applies to the next request (cache invalidated)', async () => {
    await srv.api.call('PUT', 'sys/policies/acl/team', {
      body: { policy: 'path "secret/data/other" {\n capabilities = ["create", "update"]\n}' },
    });
    assert.equal((await srv.api.call('GET', 'secret/data/team/a', { token })).status, 403);
    assert.equal((await srv.api.call('POST', 'secret/data/other', { token, body: { data: { k: 'v' } } })).status, 200);
  });

  it('authorised requests do not read storage for the token or the policy once cached', async () => {
    const read = () => srv.api.call('POST', 'sys/capabilities-self', { token, body: { path: 'secret/data/other' } });
    assert.equal((await read()).status, 200);
    const before = srv.cofre.storage.stats().reads;
    for (let i = 0; i < 20; i++) assert.equal((await read()).status, 200);
    assert.equal(srv.cofre.storage.stats().reads, before, 'no storage read per request');
    // ...and the caches are invalidated: a policy change and a revocation apply to the very next request.
    await srv.api.call('PUT', 'sys/policies/acl/team', {
      body: { policy: 'path "nothing" {\n capabilities = ["read"]\n}' },
    });
    assert.deepEqual((await read()).body.capabilities, ['deny']);
    await srv.api.call('PUT', 'sys/policies/acl/team', {
      body: { policy: 'path "secret/data/other" {\n capabilities = ["create", "update"]\n}' },
    });
  });

  it('sys/capabilities and capabilities-self report the ACL', async () => {
    const self = await srv.api.call('POST', 'sys/capabilities-self', { token, body: { path: 'secret/data/other' } });
    assert.deepEqual(self.body.capabilities, ['create', 'update']);
    const other = await srv.api.call('POST', 'sys/capabilities', { body: { token, paths: ['secret/data/nope'] } });
    assert.deepEqual(other.body['secret/data/nope'], ['deny']);
    const root = await srv.api.call('POST', 'sys/capabilities-self', { body: { path: 'anything' } });
    assert.deepEqual(root.body.capabilities, ['root']);
  });

  it('lists, reads and refuses bad policies with a clear message; root and default are protected', async () => {
    const list = await srv.api.call('LIST', 'sys/policies/acl');
    assert.ok(list.body.data.keys.includes('team'));
    assert.ok(list.body.data.keys.includes('default'));
    const bad = await srv.api.call('PUT', 'sys/policies/acl/bad', {
      body: { policy: 'path "x" { capabilities = ["fly"] }' },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.errors[0], /fly/);
    assert.equal((await srv.api.call('GET', 'sys/policies/acl/bad')).status, 404);
    assert.equal((await srv.api.call('DELETE', 'sys/policies/acl/root')).status, 400);
    assert.equal((await srv.api.call('DELETE', 'sys/policies/acl/default')).status, 400);
    const json = await srv.api.call('PUT', 'sys/policies/acl/json', {
      body: { policy: JSON.stringify({ path: { 'secret/*': { capabilities: ['read'] } } }) },
    });
    assert.equal(json.status, 204);
    const legacy = await srv.api.call('GET', 'sys/policy/json');
    assert.match(legacy.body.rules, /secret/);
  });
});

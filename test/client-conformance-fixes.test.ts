// Where the client conformance suites (test/clients/go, test/clients/hvac) found Cofre answering differently from
// Vault, each difference pinned here over raw HTTP, with the probes a limited token could try.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

const SYSTEM_TTL = 768 * 3600;

describe('Vault behaviours the client conformance suites pinned', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'sys/mounts/fix-kv', { type: 'kv' });
    await writeOk(srv.api, 'sys/auth/fix-up', { type: 'userpass' });
    await writeOk(srv.api, 'auth/fix-up/users/u', { password: 'fix-pw-1', token_ttl: '1h' });
  });
  after(() => srv.stop());

  const createToken = async (body: Record<string, unknown>): Promise<{ client_token: string; accessor: string }> =>
    (await writeOk(srv.api, 'auth/token/create', body)).body.auth;

  it('a tune read answers the TTLs in force (the system’s when the mount sets none); the list answers 0', async () => {
    const tune = async () => (await srv.api.call('GET', 'sys/mounts/fix-kv/tune')).body.data;
    assert.deepEqual([(await tune()).default_lease_ttl, (await tune()).max_lease_ttl], [SYSTEM_TTL, SYSTEM_TTL]);
    const listed = (await srv.api.call('GET', 'sys/mounts')).body.data['fix-kv/'].config;
    assert.deepEqual([listed.default_lease_ttl, listed.max_lease_ttl], [0, 0]);
    await writeOk(srv.api, 'sys/mounts/fix-kv/tune', { default_lease_ttl: '1h', max_lease_ttl: '2h' });
    assert.deepEqual([(await tune()).default_lease_ttl, (await tune()).max_lease_ttl], [3600, 7200]);
    await writeOk(srv.api, 'sys/mounts/fix-kv/tune', { default_lease_ttl: 'system' });
    assert.deepEqual([(await tune()).default_lease_ttl, (await tune()).max_lease_ttl], [SYSTEM_TTL, 7200]);
    const auth = (await srv.api.call('GET', 'sys/auth/fix-up/tune')).body.data;
    assert.deepEqual([auth.default_lease_ttl, auth.max_lease_ttl], [SYSTEM_TTL, SYSTEM_TTL]);
  });

  it('sys/mounts/<path> reads the mount serving a path, auth methods under auth/ (the Go client’s GetAuth)', async () => {
    const auth = await srv.api.call('GET', 'sys/mounts/auth/fix-up');
    assert.equal(auth.status, 200, auth.text);
    assert.equal(auth.body.data.type, 'userpass');
    assert.equal(auth.body.data.accessor, (await srv.api.call('GET', 'sys/auth')).body.data['fix-up/'].accessor);
    const deeper = await srv.api.call('GET', 'sys/mounts/fix-kv/some/secret');
    assert.equal(deeper.body.data.type, 'kv', deeper.text);
    assert.equal((await srv.api.call('GET', 'sys/mounts/no-such-mount')).status, 400);
    assert.equal((await srv.api.call('GET', 'sys/mounts/auth/no-such-method')).status, 400);
  });

  it('reading an auth method through sys/mounts/auth/ needs the sudo sys/auth/ needs', async () => {
    await writeOk(srv.api, 'sys/policies/acl/mount-reader', {
      policy: 'path "sys/mounts/*" {\n  capabilities = ["read"]\n}\n',
    });
    const { client_token: token } = await createToken({ policies: ['mount-reader'], ttl: '10m' });
    assert.equal((await srv.api.call('GET', 'sys/mounts/fix-kv', { token })).status, 200);
    for (const path of ['sys/mounts/auth/fix-up', 'sys/mounts/auth/fix-up/login/u', 'sys/mounts/auth/token']) {
      const res = await srv.api.call('GET', path, { token });
      assert.equal(res.status, 403, `${path}: ${res.text}`);
      assert.doesNotMatch(res.text, /accessor|userpass/);
    }
    await writeOk(srv.api, 'sys/policies/acl/auth-reader', {
      policy: 'path "sys/auth/*" {\n  capabilities = ["read", "sudo"]\n}\n',
    });
    const sudo = (await createToken({ policies: ['mount-reader', 'auth-reader'], ttl: '10m' })).client_token;
    assert.equal((await srv.api.call('GET', 'sys/mounts/auth/fix-up', { token: sudo })).status, 200);
  });

  it('a token’s lease shows the token’s renewable flag, and sys/leases/renew refuses it as Vault does', async () => {
    const login = await writeOk(srv.api, 'auth/fix-up/login/u', { password: 'fix-pw-1' });
    const token = login.body.auth.client_token as string;
    const keys = (await srv.api.call('LIST', 'sys/leases/lookup/auth/fix-up/login/u/')).body.data.keys as string[];
    assert.equal(keys.length, 1);
    const leaseId = `auth/fix-up/login/u/${keys[0]}`;
    const lease = await srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } });
    assert.equal(lease.body.data.renewable, true, lease.text);
    const ttlBefore = (await srv.api.call('GET', 'auth/token/lookup-self', { token })).body.data.expire_time;
    for (const increment of [60, 3600 * 24 * 365]) {
      const renew = await srv.api.call('PUT', 'sys/leases/renew', { body: { lease_id: leaseId, increment } });
      assert.equal(renew.status, 400, renew.text);
      assert.match(renew.text, /tokens cannot be renewed through this endpoint/);
    }
    // Nor by the token itself (the default policy lets it renew leases here): only auth/token/renew-self renews it.
    const selfRenew = await srv.api.call('PUT', 'sys/leases/renew', { token, body: { lease_id: leaseId } });
    assert.equal(selfRenew.status, 400, selfRenew.text);
    assert.match(selfRenew.text, /tokens cannot be renewed through this endpoint/);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).body.data.expire_time, ttlBefore);

    const fixed = await createToken({ policies: ['default'], ttl: '1h', renewable: false });
    const created = (await srv.api.call('LIST', 'sys/leases/lookup/auth/token/create/')).body.data.keys as string[];
    const renewables = await Promise.all(
      created.map(
        async (k) =>
          (await srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: `auth/token/create/${k}` } })).body.data
            .renewable as boolean,
      ),
    );
    assert.ok(fixed.client_token);
    assert.ok(renewables.includes(false), 'the non-renewable token’s lease says so');
  });

  it('auth/token/lookup of an unknown or revoked token is 403 "bad token"; renew is 400 and revoke 204, as Vault', async () => {
    const { client_token: token } = await createToken({ policies: ['default'], ttl: '10m' });
    assert.equal((await srv.api.call('POST', 'auth/token/lookup', { body: { token } })).status, 200);
    await writeOk(srv.api, 'auth/token/revoke', { token });
    for (const probe of [token, 'cvs.not-a-token', `${token}x`]) {
      const res = await srv.api.call('POST', 'auth/token/lookup', { body: { token: probe } });
      assert.equal(res.status, 403, res.text);
      assert.deepEqual(res.body.errors, ['bad token']);
    }
    assert.equal((await srv.api.call('POST', 'auth/token/lookup', { body: { token: '' } })).status, 400);
    assert.equal((await srv.api.call('POST', 'auth/token/renew', { body: { token } })).status, 400);
    // Vault's revokeCommon answers nothing for a token that is not there: revoking is idempotent.
    assert.equal((await srv.api.call('POST', 'auth/token/revoke', { body: { token } })).status, 204);
    // A token without the capability is refused by its policy before the lookup runs, for real and bad tokens.
    const { client_token: limited } = await createToken({ policies: ['default'], ttl: '10m' });
    for (const probe of [srv.rootToken, 'cvs.not-a-token']) {
      const res = await srv.api.call('POST', 'auth/token/lookup', { token: limited, body: { token: probe } });
      assert.equal(res.status, 403);
      assert.deepEqual(res.body.errors, ['permission denied']);
    }
  });
});

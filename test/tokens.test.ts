import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

describe('token store over HTTP', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
    // Vault's default policy does not allow creating tokens; this one does.
    const minter = 'path "auth/token/create" {\n  capabilities = ["update"]\n}\n';
    assert.equal((await srv.api.call('PUT', 'sys/policies/acl/minter', { body: { policy: minter } })).status, 204);
  });
  after(() => srv.stop());

  const create = async (body: unknown, token?: string) => {
    const res = await srv.api.call('POST', 'auth/token/create', { body, ...(token ? { token } : {}) });
    assert.equal(res.status, 200, res.text);
    return res.body.auth as { client_token: string; accessor: string; policies: string[]; lease_duration: number };
  };

  it('creates, looks up (by token, self, accessor) and renews', async () => {
    const t = await create({ policies: ['default'], ttl: '10m', meta: { app: 'x' }, display_name: 'ci' });
    assert.deepEqual(t.policies, ['default']);
    assert.equal(t.lease_duration, 600);
    const byToken = await srv.api.call('POST', 'auth/token/lookup', { body: { token: t.client_token } });
    assert.equal(byToken.body.data.display_name, 'token-ci');
    assert.deepEqual(byToken.body.data.meta, { app: 'x' });
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token });
    assert.equal(self.status, 200);
    assert.equal(self.body.data.accessor, t.accessor);
    assert.equal(self.body.data.id, t.client_token, 'lookup-self shows the token to its holder, as Vault');
    assert.match(t.accessor, /^[0-9a-f]+$/);
    const byAccessor = await srv.api.call('POST', 'auth/token/lookup-accessor', { body: { accessor: t.accessor } });
    assert.equal(byAccessor.body.data.id, '', 'lookup by accessor never reveals the token');
    const renewed = await srv.api.call('POST', 'auth/token/renew-self', {
      token: t.client_token,
      body: { increment: '20m' },
    });
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal(renewed.body.auth.lease_duration, 1200, 'an uncapped renewal grants exactly what was asked');
  });

  it('a renewal capped by the max TTL reports what is left rounded down, never past the token’s end', async () => {
    // Rounded to the nearest second, 2.7 s left came back as 3: a holder timing its next login by it was refused
    // for the rest of that second.
    const t = await create({ policies: ['default'], ttl: '6s', explicit_max_ttl: '6s' });
    const looked = await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token });
    // As Vault, the max TTL counts from the creation time, in whole seconds.
    const maxEnd = ((looked.body.data.creation_time as number) + 6) * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, maxEnd - Date.now() - 2_700)));
    const asked = Date.now();
    const renewed = await srv.api.call('POST', 'auth/token/renew-self', {
      token: t.client_token,
      body: { increment: '10m' },
    });
    assert.equal(renewed.status, 200, renewed.text);
    const grantedMs = (renewed.body.auth.lease_duration as number) * 1000;
    assert.ok(grantedMs <= maxEnd - asked, `granted ${grantedMs} ms with ${maxEnd - asked} ms left`);
    const after = await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token });
    assert.equal(Date.parse(after.body.data.expire_time as string), maxEnd);
  });

  it('a renewal once the max TTL has passed is refused, not answered with a duration of 0', async () => {
    // The max TTL counts from the creation time in whole seconds, the expiry from the creation instant: a token made
    // late in a second is still valid for a moment after its max TTL. A renewal then used to answer 200 and write
    // an expiry in the past.
    for (let attempt = 0; ; attempt++) {
      const t = await create({ policies: ['default'], ttl: '2s', explicit_max_ttl: '2s' });
      const looked = (await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token })).body.data;
      const maxEnd = ((looked.creation_time as number) + 2) * 1000;
      const expires = Date.parse(looked.expire_time as string);
      if (expires - maxEnd < 700) {
        assert.ok(attempt < 40, 'no token made late enough in its second');
        await new Promise((r) => setTimeout(r, 150));
        continue;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, maxEnd - Date.now() + 20)));
      const renewed = await srv.api.call('POST', 'auth/token/renew-self', { token: t.client_token, body: {} });
      assert.equal(renewed.status, 400, renewed.text);
      assert.match(renewed.text, /past the max TTL/);
      return;
    }
  });

  it('a periodic token lives no longer than its explicit max TTL, from its creation on', async () => {
    // The period used to win at creation: a token capped at 60 s was made to live an hour.
    const asked = Date.now();
    const t = await create({ policies: ['default'], period: '1h', explicit_max_ttl: '60s' });
    assert.equal(t.lease_duration, 60);
    const looked = (await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token })).body.data;
    assert.equal(looked.period, 3600);
    assert.ok((looked.ttl as number) <= 60, `ttl ${looked.ttl as number}`);
    assert.ok(Date.parse(looked.expire_time as string) <= asked + 61_000);
    const renewed = await srv.api.call('POST', 'auth/token/renew-self', { token: t.client_token, body: {} });
    assert.equal(renewed.status, 200, renewed.text);
    assert.ok((renewed.body.auth.lease_duration as number) <= 60);
  });

  it('children are revoked with their parent; revoke-orphan keeps them', async () => {
    const parent = await create({ policies: ['minter'] });
    const child = await create({ policies: ['minter'] }, parent.client_token);
    const grandchild = await create({}, child.client_token);
    assert.equal(
      (await srv.api.call('POST', 'auth/token/revoke', { body: { token: parent.client_token } })).status,
      204,
    );
    for (const t of [parent, child, grandchild]) {
      assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token })).status, 403);
    }
    const p2 = await create({ policies: ['minter'] });
    const c2 = await create({}, p2.client_token);
    assert.equal(
      (await srv.api.call('POST', 'auth/token/revoke-orphan', { body: { token: p2.client_token } })).status,
      204,
    );
    const orphan = await srv.api.call('GET', 'auth/token/lookup-self', { token: c2.client_token });
    assert.equal(orphan.status, 200);
    assert.equal(orphan.body.data.orphan, true);
  });

  it('a non-root token cannot widen its policies or create orphans', async () => {
    const t = await create({ policies: ['minter'] });
    const wider = await srv.api.call('POST', 'auth/token/create', {
      token: t.client_token,
      body: { policies: ['admin'] },
    });
    assert.equal(wider.status, 400);
    assert.match(wider.body.errors[0], /subset/);
    const orphan = await srv.api.call('POST', 'auth/token/create', {
      token: t.client_token,
      body: { no_parent: true },
    });
    assert.ok(orphan.status === 400 || orphan.status === 403);
  });

  it('expired tokens and used-up tokens are refused with 403', async () => {
    const short = await create({ policies: ['default'], ttl: 1 });
    await new Promise((r) => setTimeout(r, 1200));
    const expired = await srv.api.call('GET', 'auth/token/lookup-self', { token: short.client_token });
    assert.equal(expired.status, 403);
    assert.match(expired.body.errors[0], /permission denied/);
    const once = await create({ policies: ['default'], num_uses: 1 });
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token: once.client_token })).status, 200);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token: once.client_token })).status, 403);
  });

  it('revoke-accessor and accessors list', async () => {
    const t = await create({ policies: ['default'] });
    const list = await srv.api.call('LIST', 'auth/token/accessors');
    assert.equal(list.status, 200, list.text);
    assert.ok(list.body.data.keys.includes(t.accessor));
    assert.equal(
      (await srv.api.call('POST', 'auth/token/revoke-accessor', { body: { accessor: t.accessor } })).status,
      204,
    );
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token: t.client_token })).status, 403);
    const t2 = await create({ policies: ['default'] });
    assert.equal((await srv.api.call('POST', 'auth/token/revoke-self', { token: t2.client_token })).status, 204);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token: t2.client_token })).status, 403);
  });

  it('Authorization: Bearer works like X-Vault-Token', async () => {
    const res = await fetch(`${srv.url}/v1/auth/token/lookup-self`, {
      headers: { authorization: `Bearer ${srv.rootToken}` },
    });
    assert.equal(res.status, 200);
  });
});

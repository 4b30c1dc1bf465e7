// Batch tokens over HTTP against a real server: issued, used, refused when tampered with, ended with their parent
// (also while requests race the revocation), surviving a restart and a key rotation, issued by auth methods' roles.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir, writeOk, type InProcessServer } from './support.js';

describe('batch tokens', () => {
  let srv: InProcessServer;
  const dir = tempDir('batch-tokens');
  before(async () => {
    srv = await startServer({ dir });
    await writeOk(srv.api, 'sys/policies/acl/reader', {
      policy: 'path "secret/*" {\n  capabilities = ["read", "create", "update"]\n}\n',
    });
    await writeOk(srv.api, 'sys/policies/acl/minter', {
      policy:
        'path "auth/token/create*" {\n  capabilities = ["update"]\n}\npath "auth/token/*" {\n  capabilities = ["update", "read"]\n}\n',
    });
  });
  after(async () => {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const createBatch = async (body: Record<string, unknown> = {}, token?: string) => {
    const res = await srv.api.call('POST', 'auth/token/create', {
      body: { type: 'batch', ...body },
      ...(token ? { token } : {}),
    });
    assert.equal(res.status, 200, res.text);
    return res.body.auth as Record<string, unknown> & { client_token: string };
  };
  const status = async (token: string, path = 'auth/token/lookup-self') =>
    (await srv.api.call('GET', path, { token })).status;

  it('is issued with Vault’s shape: cvb. prefix, no accessor, not renewable, lookup says batch', async () => {
    const auth = await createBatch({ policies: ['reader'], ttl: '10m', meta: { app: 'ci' }, display_name: 'b' });
    assert.match(auth.client_token, /^cvb\.[A-Za-z0-9_-]+$/);
    assert.equal(auth.accessor, '');
    assert.equal(auth.renewable, false);
    assert.equal(auth.token_type, 'batch');
    assert.equal(auth.lease_duration, 600);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: auth.client_token });
    assert.equal(self.status, 200, self.text);
    assert.equal(self.body.data.type, 'batch');
    assert.equal(self.body.data.accessor, '');
    assert.equal(self.body.data.renewable, false);
    assert.equal(self.body.data.num_uses, 0);
    assert.equal(self.body.data.display_name, 'token-b');
    assert.deepEqual(self.body.data.meta, { app: 'ci' });
    assert.deepEqual(self.body.data.policies, ['default', 'reader']);
    // It works as a token: its policies apply.
    assert.equal(
      (await srv.api.call('PUT', 'secret/data/x', { token: auth.client_token, body: { data: { a: 1 } } })).status,
      200,
    );
    assert.equal((await srv.api.call('GET', 'sys/policies/acl/reader', { token: auth.client_token })).status, 403);
    // Not stored: the accessor list does not grow with it.
    const accessors = await srv.api.call('LIST', 'auth/token/accessors');
    assert.ok(!accessors.body.data.keys.includes(''));
  });

  it('refuses Vault’s forbidden combinations', async () => {
    for (const [body, message] of [
      [{ num_uses: 3 }, /batch tokens cannot have "num_uses" set/],
      [{ period: '1h' }, /batch tokens cannot have "period" set/],
      [{ explicit_max_ttl: '1h' }, /batch tokens cannot have "explicit_max_ttl" set/],
      [{ policies: ['root'] }, /batch tokens cannot be root tokens/],
      [{ type: 'weird' }, /invalid 'token_type' value/],
    ] as const) {
      const res = await srv.api.call('POST', 'auth/token/create', { body: { type: 'batch', ...body } });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.body.errors[0], message);
    }
  });

  it("a role's use limit, explicit max TTL and period hold when its caller asks it for a batch token", async () => {
    await writeOk(srv.api, 'auth/token/roles/limited', { token_type: 'default-service', token_num_uses: 2 });
    const refused = await srv.api.call('POST', 'auth/token/create/limited', { body: { type: 'batch' } });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.body.errors[0], /role "limited" limits its tokens to 2 uses .*ask for a service token/);
    const service = await srv.api.call('POST', 'auth/token/create/limited', { body: {} });
    assert.equal(service.status, 200, service.text);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: service.body.auth.client_token });
    assert.equal(self.body.data.num_uses, 2);

    // A role's caller asks it for a batch token of 30 days.
    const batchOf = async (role: string, limits: Record<string, unknown>) => {
      await writeOk(srv.api, `auth/token/roles/${role}`, {
        token_type: 'default-service',
        allowed_policies: 'reader',
        ...limits,
      });
      const res = await srv.api.call('POST', `auth/token/create/${role}`, {
        body: { type: 'batch', ttl: '720h', policies: ['reader'] },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.auth.token_type, 'batch');
      return res.body.auth as { client_token: string; lease_duration: number };
    };
    const short = await batchOf('short', { token_explicit_max_ttl: '1h' });
    assert.equal(short.lease_duration, 3600, "capped by the role's explicit max TTL");
    const lookup = await srv.api.call('GET', 'auth/token/lookup-self', { token: short.client_token });
    assert.ok(lookup.body.data.ttl <= 3600, lookup.text);
    // A periodic role's tokens must be renewed every period; a batch token cannot be, so it lives one period.
    const periodic = await batchOf('periodic', { token_period: '30m' });
    assert.equal(periodic.lease_duration, 1800, "capped by the role's period");
  });

  it('tampered, truncated, forged or re-encoded batch tokens are refused with 403', async () => {
    const { client_token: token } = await createBatch({ policies: ['reader'], ttl: '10m' });
    const body = token.slice(4);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const forged = [
      `cvb.${flip(body, 0)}`,
      `cvb.${flip(body, Math.floor(body.length / 2))}`,
      `cvb.${flip(body, body.length - 1)}`,
      token.slice(0, -1),
      token.slice(0, 20),
      'cvb.',
      `cvb.${body}=`,
      `cvb.${body}.x`,
      `cvb.${Buffer.from(JSON.stringify({ p: '', pol: ['root'], path: 'auth/token/create' })).toString('base64url')}`,
      `cvs.${body}`,
      `cvb.${'A'.repeat(4000)}`,
    ];
    for (const bad of forged) {
      assert.equal(await status(bad), 403, `forged ${bad.slice(0, 40)}…`);
      const lookup = await srv.api.call('POST', 'auth/token/lookup', { body: { token: bad } });
      assert.equal(lookup.status, 403);
    }
    assert.equal(await status(token), 200, 'the genuine token still works');
  });

  it('cannot create tokens, renew, or be revoked by itself', async () => {
    const { client_token: token } = await createBatch({ policies: ['minter'], ttl: '10m' });
    for (const [path, body, message] of [
      ['auth/token/create', {}, /batch tokens cannot create more tokens/],
      ['auth/token/create', { type: 'batch' }, /batch tokens cannot create more tokens/],
      ['auth/token/create-orphan', {}, /batch tokens cannot create more tokens/],
      ['auth/token/renew-self', {}, /batch tokens cannot be renewed/],
      ['auth/token/revoke-self', {}, /batch tokens cannot be revoked/],
    ] as const) {
      const res = await srv.api.call('POST', path, { token, body });
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assert.match(res.body.errors[0], message);
    }
    const renew = await srv.api.call('POST', 'auth/token/renew', { body: { token } });
    assert.equal(renew.status, 400);
    assert.match(renew.body.errors[0], /batch tokens cannot be renewed/);
    assert.equal(await status(token), 200);
  });

  it('ends when its TTL does, and never outlives its parent’s expiry', async () => {
    const short = await createBatch({ policies: ['reader'], ttl: '1s' });
    assert.equal(await status(short.client_token), 200);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(await status(short.client_token), 403);
    const parent = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['minter'], ttl: '30s' } });
    const child = await createBatch({ ttl: '1h' }, parent.body.auth.client_token);
    assert.ok((child.lease_duration as number) <= 30, `batch child of a 30s parent has ${child.lease_duration}s`);
  });

  it('is revoked with its parent, also while parallel requests race the revocation', async () => {
    for (let round = 0; round < 5; round++) {
      const parent = await srv.api.call('POST', 'auth/token/create', {
        body: { policies: ['minter', 'reader'], ttl: '1h' },
      });
      assert.equal(parent.status, 200, parent.text);
      const parentToken = parent.body.auth.client_token as string;
      const batches = await Promise.all(
        Array.from({ length: 4 }, () => createBatch({ policies: ['reader'], ttl: '1h' }, parentToken)),
      );
      let revokedAt = 0;
      const after: number[] = [];
      let stop = false;
      const hammer = async (token: string) => {
        while (!stop) {
          const res = await srv.api.call('GET', 'secret/data/x', { token });
          if (revokedAt && Date.now() > revokedAt) after.push(res.status);
          if (res.status === 403) return;
        }
      };
      const loops = batches.map((b) => hammer(b.client_token));
      await new Promise((r) => setTimeout(r, 20 + round * 10));
      const revoked = await srv.api.call('POST', 'auth/token/revoke', { body: { token: parentToken } });
      assert.equal(revoked.status, 204);
      revokedAt = Date.now();
      await new Promise((r) => setTimeout(r, 50));
      stop = true;
      await Promise.all(loops);
      for (const b of batches) assert.equal(await status(b.client_token), 403, 'a batch token outlived its parent');
      // Requests sent after the revocation answered are all refused.
      assert.ok(
        after.every((s) => s === 403),
        `answers after the revocation: ${after.join(',')}`,
      );
    }
  });

  it('an auth method role with token_type batch issues batch tokens, which end with the mount', async () => {
    await writeOk(srv.api, 'sys/auth/up-batch', { type: 'userpass' });
    const bad = await srv.api.call('POST', 'auth/up-batch/users/ann', {
      body: { password: 'pw', token_type: 'batch', token_num_uses: 2 },
    });
    assert.equal(bad.status, 400);
    assert.match(
      bad.body.errors[0],
      /cannot be 'batch' or 'default_batch' when set to generate tokens with limited use/,
    );
    await writeOk(srv.api, 'auth/up-batch/users/ann', {
      password: 'pw',
      token_policies: 'reader',
      token_type: 'batch',
    });
    const read = await srv.api.call('GET', 'auth/up-batch/users/ann');
    assert.equal(read.body.data.token_type, 'batch');
    const login = await srv.api.call('POST', 'auth/up-batch/login/ann', { token: '', body: { password: 'pw' } });
    assert.equal(login.status, 200, login.text);
    const auth = login.body.auth;
    assert.equal(auth.token_type, 'batch');
    assert.match(auth.client_token, /^cvb\./);
    assert.equal(auth.accessor, '');
    assert.equal(auth.renewable, false);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: auth.client_token });
    assert.equal(self.status, 200, self.text);
    assert.equal(self.body.data.display_name, 'up-batch-ann');
    assert.equal(self.body.data.orphan, true);
    assert.equal(self.body.data.path, 'auth/up-batch/login/ann');
    // Disabling the method ends its tokens, batch ones included; mounting it again does not bring them back.
    assert.equal((await srv.api.call('DELETE', 'sys/auth/up-batch')).status, 204);
    assert.equal(await status(auth.client_token), 403);
    await writeOk(srv.api, 'sys/auth/up-batch', { type: 'userpass' });
    assert.equal(await status(auth.client_token), 403);
  });

  it('survives a restart and a key rotation', async () => {
    const { client_token: token } = await createBatch({ policies: ['reader'], ttl: '1h' });
    assert.equal((await srv.api.call('PUT', 'sys/rotate')).status, 204);
    assert.equal(await status(token), 200, 'a rotation keeps the old key term');
    const { client_token: after } = await createBatch({ policies: ['reader'], ttl: '1h' });
    const keys = srv.keys;
    await srv.stop();
    srv = await startServer({ dir, initialised: false });
    for (const key of keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
    assert.equal(await status(token), 200, 'a batch token from before the restart');
    assert.equal(await status(after), 200, 'a batch token sealed under the rotated term');
    assert.equal(await status(`${token.slice(0, -2)}AA`), 403);
  });
});

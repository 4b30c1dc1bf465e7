// Attacks on tokens with a limited token and concurrency (the security issue's findings 1–5 and 10–12). Each test
// was written to fail on the code before the fix; races are repeated so that one that hits 1 in 20 is caught.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rmSync } from 'node:fs';
import { apiClient, revokeWhileMinting, startServer, tempDir, type InProcessServer } from './support.js';

const ROUNDS = 25;

describe('tokens under attack', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ initialised: true });
    const policy = (name: string, hcl: string) =>
      srv.api.call('PUT', `sys/policies/acl/${name}`, { body: { policy: hcl } });
    await policy('reader', 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n');
    await policy(
      'minter',
      'path "auth/token/create" {\n  capabilities = ["update"]\n}\npath "secret/data/app/*" {\n  capabilities = ["read"]\n}\n',
    );
    assert.equal(
      (await srv.api.call('POST', 'secret/data/app/db', { body: { data: { password: 'v1' } } })).status,
      200,
    );
    assert.equal(
      (await srv.api.call('POST', 'secret/data/app/db', { body: { data: { password: 'v2' } } })).status,
      200,
    );
  });
  after(() => srv.stop());

  const create = async (body: Record<string, unknown>, token?: string) => {
    const res = await srv.api.call('POST', 'auth/token/create', { body, ...(token ? { token } : {}) });
    assert.equal(res.status, 200, res.text);
    return res.body.auth as { client_token: string; accessor: string; lease_duration: number };
  };
  const read = (token: string) => srv.api.call('GET', 'secret/data/app/db', { token });

  it('a revoked token stays revoked when requests race its revocation (finding 1)', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const t = await create({ policies: ['minter'] });
      // Evict it from no cache: the lookups that race the revocation are what put it back before the fix.
      const racing = Array.from({ length: 30 }, (_, i) => sleep(i % 5).then(() => read(t.client_token)));
      const revoked = await srv.api.call('POST', 'auth/token/revoke', { body: { token: t.client_token } });
      assert.equal(revoked.status, 204);
      await Promise.all(racing);
      for (const res of await Promise.all([read(t.client_token), read(t.client_token)])) {
        assert.equal(res.status, 403, `round ${round}: the revoked token still reads`);
      }
      const child = await srv.api.call('POST', 'auth/token/create', { token: t.client_token, body: {} });
      assert.equal(child.status, 403, `round ${round}: the revoked token minted a child`);
      const byAccessor = await srv.api.call('POST', 'auth/token/lookup-accessor', { body: { accessor: t.accessor } });
      assert.equal(byAccessor.status, 400, 'its accessor is gone with it');
    }
  });

  it('children created while their parent is revoked do not survive it (finding 2)', async () => {
    for (let round = 0; round < 8; round++) {
      const parent = await create({ policies: ['minter'], ttl: '1h' });
      const { children, revokeStatus } = await revokeWhileMinting(
        Array.from({ length: 12 }, () => srv.api),
        srv.api,
        parent.client_token,
        20,
      );
      assert.equal(revokeStatus, 204);
      assert.ok(children.length > 0, 'children were created before the revocation');
      const alive = [];
      for (const child of children) if ((await read(child)).status !== 403) alive.push(child);
      assert.deepEqual(alive, [], `round ${round}: ${alive.length} of ${children.length} children survived`);
    }
  });

  it('num_uses holds under concurrency with an audit device on (finding 3)', async () => {
    const log = `${tempDir('uses')}/audit.log`;
    const enabled = await srv.api.call('PUT', 'sys/audit/uses', {
      body: { type: 'file', options: { file_path: log } },
    });
    assert.equal(enabled.status, 204, enabled.text);
    try {
      for (let round = 0; round < 5; round++) {
        const t = await create({ policies: ['reader'], num_uses: 2 });
        const results = await Promise.all(Array.from({ length: 40 }, () => read(t.client_token)));
        const answered = results.filter((r) => r.status === 200).length;
        assert.equal(answered, 2, `round ${round}: a num_uses=2 token answered ${answered} of 40 reads`);
      }
    } finally {
      await srv.api.call('DELETE', 'sys/audit/uses');
    }
  });

  it("a child's TTL is capped by its parent's, and both end on time without being presented (finding 4)", async () => {
    const parent = await create({ policies: ['minter'], ttl: '2s' });
    const child = await create({ ttl: '1h' }, parent.client_token);
    assert.ok(child.lease_duration <= 2, `the child got ${child.lease_duration}s under a 2s parent`);
    const leases = () => srv.api.call('LIST', 'sys/leases/lookup/auth/token/create/');
    const before = await leases();
    assert.equal(before.status, 200, before.text);
    assert.ok(before.body.data.keys.length >= 2, 'both tokens are leases');
    await sleep(3500);
    // Nobody presented either token: the expiration manager revoked them (and would have revoked their leases).
    const afterwards = await leases();
    const keys: string[] = afterwards.status === 200 ? afterwards.body.data.keys : [];
    const mine = await Promise.all(
      [parent, child].map((t) =>
        srv.api.call('POST', 'auth/token/lookup-accessor', { body: { accessor: t.accessor } }),
      ),
    );
    assert.deepEqual(
      mine.map((r) => r.status),
      [400, 400],
    );
    assert.equal(keys.length, 0, `leases left: ${keys.join(', ')}`);
  });

  it('a child cannot be renewed past its parent', async () => {
    const parent = await create({ policies: ['minter'], ttl: '30s' });
    const child = await create({ ttl: '10s' }, parent.client_token);
    const renewed = await srv.api.call('POST', 'auth/token/renew-self', {
      token: child.client_token,
      body: { increment: '1h' },
    });
    assert.equal(renewed.status, 200, renewed.text);
    assert.ok(renewed.body.auth.lease_duration <= 30, `renewed to ${renewed.body.auth.lease_duration}s`);
  });

  it('periodic tokens need sudo, and every duration is bounded (finding 5)', async () => {
    const limited = await create({ policies: ['minter'] });
    const periodic = await srv.api.call('POST', 'auth/token/create', {
      token: limited.client_token,
      body: { period: '876000h' },
    });
    assert.equal(periodic.status, 400, periodic.text);
    assert.match(periodic.text, /sudo/);
    for (const field of ['period', 'ttl', 'explicit_max_ttl']) {
      const huge = await srv.api.call('POST', 'auth/token/create', { body: { [field]: 1e300 } });
      assert.equal(huge.status, 400, `${field}=1e300: ${huge.text}`);
      assert.match(huge.text, /at most/);
    }
    const fine = await create({ period: '876000h' }); // root may, and lookup-self then works
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: fine.client_token });
    assert.equal(self.status, 200, self.text);
  });

  it('parameter constraints apply to the query string of a read (finding 10)', async () => {
    const policy = (name: string, rule: string) =>
      srv.api.call('PUT', `sys/policies/acl/${name}`, {
        body: { policy: `path "secret/data/app/*" {\n  capabilities = ["read"]\n  ${rule}\n}\n` },
      });
    await policy('no-versions', 'denied_parameters = { "version" = [] }');
    await policy('latest-only', 'allowed_parameters = { "other" = [] }');
    for (const name of ['no-versions', 'latest-only']) {
      const t = await create({ policies: [name] });
      assert.equal((await read(t.client_token)).status, 200, `${name}: plain read`);
      const old = await srv.api.call('GET', 'secret/data/app/db?version=1', { token: t.client_token });
      assert.equal(old.status, 403, `${name}: ?version=1 read an old version`);
      assert.doesNotMatch(old.text, /v1/);
    }
  });

  it('a token without access learns nothing about a path: ACL before routing, methods and fields (finding 11)', async () => {
    const t = await create({ policies: ['reader'] });
    const probes: Array<[string, string, unknown]> = [
      ['POST', 'sys/mounts/probe', { type: 'kv', bogus_field: 1 }], // fields of a path it may not use
      ['PATCH', 'sys/policies/acl/x', {}], // an operation the path does not support
      ['GET', 'nosuchmount/x', undefined], // a mount that does not exist
      ['GET', 'secret/nosuchpath/x', undefined], // a path no record serves
      ['POST', 'secret/config', { max_versions: 'not a number' }],
    ];
    for (const [method, path, body] of probes) {
      const res = await srv.api.call(method, path, {
        token: t.client_token,
        ...(body !== undefined ? { body } : {}),
        ...(method === 'PATCH' ? { headers: { 'content-type': 'application/merge-patch+json' } } : {}),
      });
      assert.equal(res.status, 403, `${method} ${path}: ${res.status} ${res.text}`);
      assert.deepEqual(res.body.errors, ['permission denied'], `${method} ${path}`);
    }
    // Root still gets the precise answers.
    assert.equal((await srv.api.call('GET', 'nosuchmount/x')).status, 404);
    assert.equal((await srv.api.call('POST', 'secret/config', { body: { max_versions: 'x' } })).status, 400);
  });

  it('tuning an auth mount needs sudo (finding 12)', async () => {
    await srv.api.call('PUT', 'sys/policies/acl/auth-tuner', {
      body: { policy: 'path "sys/auth/*" {\n  capabilities = ["create", "read", "update"]\n}\n' },
    });
    const t = await create({ policies: ['auth-tuner'] });
    const tune = await srv.api.call('POST', 'sys/auth/token/tune', {
      token: t.client_token,
      body: { default_lease_ttl: '1s' },
    });
    assert.equal(tune.status, 403, tune.text);
  });

  it('KV requests that end in 404 put nothing on the change stream (finding 12)', async () => {
    const before = srv.cofre.core.changes.lastIndex;
    for (const [method, path] of [
      ['POST', 'secret/foo/bar'],
      ['POST', 'secret/data/app/'],
      ['DELETE', 'secret/data/app/'],
    ] as const) {
      const res = await srv.api.call(method, path, { body: { data: { a: 'b' } } });
      assert.ok(res.status >= 400, `${method} ${path} answered ${res.status}`);
    }
    assert.equal(srv.cofre.core.changes.lastIndex, before);
  });

  it('token metadata and capability paths keep keys named like object members (finding 12)', async () => {
    const meta = JSON.parse('{"__proto__": "a", "constructor": "b", "toString": "c"}') as Record<string, string>;
    const t = await create({ policies: ['reader'], meta });
    const lookup = await srv.api.call('POST', 'auth/token/lookup', { body: { token: t.client_token } });
    assert.deepEqual(Object.entries(lookup.body.data.meta).sort(), Object.entries(meta).sort());
    const caps = await srv.api.call('POST', 'sys/capabilities-self', {
      token: t.client_token,
      body: { paths: ['__proto__', 'constructor'] },
    });
    assert.equal(caps.status, 200, caps.text);
    assert.ok(Object.hasOwn(caps.body.data, '__proto__') && Object.hasOwn(caps.body.data, 'constructor'), caps.text);
  });

  it('junk tokens are neither remembered nor hashed when oversized (finding 12)', async () => {
    const remembered = srv.cofre.core.tokens.stats().rememberedTokens;
    const junk = 'x'.repeat(15_000);
    for (let i = 0; i < 500; i++) {
      const res = await srv.api.call('GET', 'secret/data/app/db', {
        token: '',
        headers: { authorization: `Bearer ${junk}${i}` },
      });
      assert.equal(res.status, 403);
    }
    for (let i = 0; i < 500; i++) await read(`cvs.junk${i}`);
    assert.equal(srv.cofre.core.tokens.stats().rememberedTokens, remembered, 'junk tokens were remembered');
  });
});

describe('token leases across a restart (finding 4)', () => {
  it('a token that expired while the server was down is revoked as soon as it is back, unpresented', async () => {
    const dir = tempDir('token-restart');
    const first = await startServer({ initialised: true, dir, shares: 1, threshold: 1 });
    const created = await first.api.call('POST', 'auth/token/create', { body: { ttl: '2s' } });
    assert.equal(created.status, 200, created.text);
    const leased = await first.api.call('LIST', 'sys/leases/lookup/auth/token/create/');
    assert.equal(leased.body?.data?.keys?.length, 1, `the token is a lease: ${leased.text}`);
    await first.stop();
    await sleep(2500);
    const second = await startServer({ initialised: false, dir });
    try {
      const api = apiClient(second.url, first.rootToken);
      assert.equal((await api.call('PUT', 'sys/unseal', { body: { key: first.keys[0] } })).body.sealed, false);
      const leases = async () => {
        const res = await api.call('LIST', 'sys/leases/lookup/auth/token/create/');
        return res.status === 200 ? (res.body.data.keys as string[]) : [];
      };
      for (let i = 0; i < 50 && (await leases()).length > 0; i++) await sleep(100);
      assert.deepEqual(await leases(), []);
      const lookup = await api.call('POST', 'auth/token/lookup-accessor', {
        body: { accessor: created.body.auth.accessor },
      });
      assert.equal(lookup.status, 400, lookup.text);
    } finally {
      await second.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

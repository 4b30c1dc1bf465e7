// Token roles (auth/token/roles, auth/token/create/:role_name), revocation by creation path, tidy, display names
// and Vault's answers for unknown tokens, over HTTP against a real server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StorageView } from '../src/core/storage-view.js';
import { tidyDone } from '../src/auth/token/tidy.js';
import { runCli, startServer, until, writeOk, type InProcessServer } from './support.js';

interface Auth {
  client_token: string;
  accessor: string;
  policies: string[];
  lease_duration: number;
  renewable: boolean;
  orphan: boolean;
  num_uses: number;
}

describe('token roles', () => {
  let srv: InProcessServer;
  // A limited caller: it may create tokens against roles, and nothing else of the token store's writes.
  let minter: string;

  before(async () => {
    srv = await startServer();
    const policy = (paths: string[]) =>
      paths.map((p) => `path "${p}" {\n  capabilities = ["update", "create"]\n}\n`).join('');
    await writeOk(srv.api, 'sys/policies/acl/role-minter', {
      policy: policy(['auth/token/create/*', 'auth/token/create']),
    });
    for (const name of ['reader', 'writer', 'app-one', 'app-two', 'secret-admin']) {
      await writeOk(srv.api, `sys/policies/acl/${name}`, {
        policy: 'path "secret/*" {\n  capabilities = ["read"]\n}\n',
      });
    }
    minter = await create('auth/token/create', { policies: ['role-minter', 'secret-admin'], ttl: '2h' });
  });
  after(() => srv.stop());

  async function create(path: string, body: unknown, token?: string): Promise<string> {
    const res = await srv.api.call('POST', path, { body, ...(token ? { token } : {}) });
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    return res.body.auth.client_token as string;
  }
  const createAuth = async (path: string, body: unknown, token?: string): Promise<Auth & { warnings?: string[] }> => {
    const res = await srv.api.call('POST', path, { body, ...(token ? { token } : {}) });
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    return { ...(res.body.auth as Auth), warnings: res.body.warnings ?? undefined };
  };
  const lookup = async (token: string) => {
    const res = await srv.api.call('POST', 'auth/token/lookup', { body: { token } });
    return res;
  };

  it('writes, reads, lists and deletes roles with Vault’s fields and shape', async () => {
    await writeOk(srv.api, 'auth/token/roles/shape', {
      allowed_policies: 'Reader, writer',
      disallowed_policies: ['secret-admin'],
      allowed_policies_glob: ['app-*'],
      orphan: true,
      token_period: '1h',
      path_suffix: 'v1',
      token_num_uses: 3,
      token_bound_cidrs: ['127.0.0.1/32'],
    });
    const read = await srv.api.call('GET', 'auth/token/roles/shape');
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.data, {
      allowed_entity_aliases: [],
      allowed_policies: ['reader', 'writer'],
      allowed_policies_glob: ['app-*'],
      disallowed_policies: ['secret-admin'],
      disallowed_policies_glob: [],
      explicit_max_ttl: 0,
      name: 'shape',
      orphan: true,
      path_suffix: 'v1',
      period: 0,
      renewable: true,
      token_bound_cidrs: ['127.0.0.1/32'],
      token_explicit_max_ttl: 0,
      token_no_default_policy: false,
      token_num_uses: 3,
      token_period: 3600,
      token_type: 'default-service',
    });
    // An update changes only what it names.
    await writeOk(srv.api, 'auth/token/roles/shape', { renewable: false });
    const updated = await srv.api.call('GET', 'auth/token/roles/shape');
    assert.equal(updated.body.data.renewable, false);
    assert.equal(updated.body.data.orphan, true);
    assert.equal(updated.body.data.token_period, 3600);
    const listed = await srv.api.call('LIST', 'auth/token/roles');
    assert.equal(listed.status, 200, listed.text);
    assert.ok(listed.body.data.keys.includes('shape'));
    assert.equal((await srv.api.call('DELETE', 'auth/token/roles/shape')).status, 204);
    assert.equal((await srv.api.call('GET', 'auth/token/roles/shape')).status, 404);
  });

  it('stores policy lists as Vault does: lower-cased, deduplicated, sorted; root alone stands for all', async () => {
    await writeOk(srv.api, 'auth/token/roles/sorted', {
      allowed_policies: ['Zeta', 'alpha', 'zeta'],
      disallowed_policies: 'Secret-Admin,beta,beta',
      allowed_policies_glob: ['z-*', 'a-*'],
      disallowed_policies_glob: ['Y-*', 'b-*'],
    });
    const read = await srv.api.call('GET', 'auth/token/roles/sorted');
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.data.allowed_policies, ['alpha', 'zeta']);
    assert.deepEqual(read.body.data.disallowed_policies, ['beta', 'secret-admin']);
    assert.deepEqual(read.body.data.allowed_policies_glob, ['a-*', 'z-*']);
    assert.deepEqual(read.body.data.disallowed_policies_glob, ['b-*', 'y-*']);
    // What was given in another case is matched in lower case.
    const refused = await srv.api.call('POST', 'auth/token/create/sorted', { body: { policies: ['alpha', 'Beta'] } });
    assert.equal(refused.status, 400, refused.text);
    await writeOk(srv.api, 'auth/token/roles/sorted', { allowed_policies: ['writer', 'root'] });
    assert.deepEqual((await srv.api.call('GET', 'auth/token/roles/sorted')).body.data.allowed_policies, ['root']);
    assert.equal((await srv.api.call('DELETE', 'auth/token/roles/sorted')).status, 204);
  });

  it('refuses bad role input with a message that says what is wrong', async () => {
    const cases: [unknown, RegExp][] = [
      [{ allowed_entity_aliases: ['x'] }, /allowed_entity_aliases.*not supported/],
      [{ token_type: 'nope' }, /invalid 'token_type' value "nope"/],
      [{ token_type: 'batch' }, /cannot be 'batch' when role is set to generate non-orphan tokens/],
      [{ token_type: 'batch', orphan: true }, /cannot be 'batch' when role is set to generate renewable tokens/],
      [{ token_type: 'batch', orphan: true, renewable: false, token_period: 60 }, /periodic/],
      [{ path_suffix: 'a/../b' }, /parent references/],
      [{ path_suffix: 'a b' }, /invalid characters/],
      [{ token_num_uses: -1 }, /cannot be negative/],
    ];
    for (const [body, message] of cases) {
      const res = await srv.api.call('POST', 'auth/token/roles/bad', { body });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.body.errors[0], message);
    }
    assert.equal((await srv.api.call('GET', 'auth/token/roles/bad')).status, 404, 'a refused write stores nothing');
  });

  it('allowed_policies lets a limited caller mint exactly those policies, and no others', async () => {
    await writeOk(srv.api, 'auth/token/roles/readers', { allowed_policies: ['reader'] });
    // Not a subset of the caller's policies, and still allowed: the role decides.
    const t = await createAuth('auth/token/create/readers', {}, minter);
    assert.deepEqual([...t.policies].sort(), ['default', 'reader']);
    const asked = await createAuth('auth/token/create/readers', { policies: ['reader'] }, minter);
    assert.deepEqual([...asked.policies].sort(), ['default', 'reader']);
    const wider = await srv.api.call('POST', 'auth/token/create/readers', {
      token: minter,
      body: { policies: ['reader', 'writer'] },
    });
    assert.equal(wider.status, 400);
    assert.match(wider.body.errors[0], /must be subset of the role's allowed policies/);
    const root = await srv.api.call('POST', 'auth/token/create/readers', {
      token: minter,
      body: { policies: ['root'] },
    });
    assert.equal(root.status, 400, 'a role never lets a non-root token mint root');
    // Without the role, the caller is held to a subset of its own policies.
    const plain = await srv.api.call('POST', 'auth/token/create', { token: minter, body: { policies: ['reader'] } });
    assert.equal(plain.status, 400);
    assert.match(plain.body.errors[0], /subset of parent/);
  });

  it('globs and disallowed policies are applied as in Vault', async () => {
    await writeOk(srv.api, 'auth/token/roles/apps', { allowed_policies_glob: 'app-*', disallowed_policies: 'app-two' });
    const one = await createAuth('auth/token/create/apps', { policies: ['app-one'] }, minter);
    assert.deepEqual([...one.policies].sort(), ['app-one', 'default']);
    const two = await srv.api.call('POST', 'auth/token/create/apps', {
      token: minter,
      body: { policies: ['app-two'] },
    });
    assert.equal(two.status, 400);
    assert.match(two.body.errors[0], /token policy "app-two" is disallowed by this role/);
    const other = await srv.api.call('POST', 'auth/token/create/apps', {
      token: minter,
      body: { policies: ['writer'] },
    });
    assert.equal(other.status, 400);
    // Only disallowed: the parent's policies are the base, and one of them is refused.
    await writeOk(srv.api, 'auth/token/roles/no-admin', { disallowed_policies: ['secret-admin'] });
    const inherited = await srv.api.call('POST', 'auth/token/create/no-admin', { token: minter, body: {} });
    assert.equal(inherited.status, 400);
    assert.match(inherited.body.errors[0], /"secret-admin" is disallowed/);
    // default is not added when the role disallows it.
    await writeOk(srv.api, 'auth/token/roles/no-default', {
      allowed_policies: ['reader'],
      disallowed_policies: ['default'],
    });
    const nodefault = await createAuth('auth/token/create/no-default', {}, minter);
    assert.deepEqual(nodefault.policies, ['reader']);
  });

  it('applies orphan, period, explicit max TTL, renewable, num_uses and the creation path', async () => {
    await writeOk(srv.api, 'auth/token/roles/svc', {
      allowed_policies: ['reader'],
      orphan: true,
      token_period: '30m',
      path_suffix: 'rev/2',
      token_num_uses: 5,
    });
    const parent = await create('auth/token/create', { policies: ['role-minter'], ttl: '1h' });
    const t = await createAuth('auth/token/create/svc', { num_uses: 9 }, parent);
    assert.equal(t.orphan, true, 'an orphan without sudo: the role allows it');
    assert.equal(t.num_uses, 5, "the role's use limit caps a larger one");
    assert.equal(t.lease_duration, 1800, "a periodic token without sudo: the role's period");
    const info = await lookup(t.client_token);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.body.data.path, 'auth/token/create/svc/rev/2');
    assert.equal(info.body.data.role, 'svc');
    assert.equal(info.body.data.period, 1800);
    // Revoking the parent leaves the orphan.
    assert.equal((await srv.api.call('POST', 'auth/token/revoke', { body: { token: parent } })).status, 204);
    assert.equal((await lookup(t.client_token)).status, 200);
    // The same caller without the role may not ask for a period.
    const periodic = await srv.api.call('POST', 'auth/token/create', { token: minter, body: { period: '30m' } });
    assert.equal(periodic.status, 400);

    await writeOk(srv.api, 'auth/token/roles/capped', { token_explicit_max_ttl: '60s', renewable: false });
    const capped = await createAuth('auth/token/create/capped', { ttl: '1h', explicit_max_ttl: '120s' }, minter);
    assert.ok(capped.lease_duration <= 60 && capped.lease_duration > 50, `ttl ${capped.lease_duration}`);
    assert.equal(capped.renewable, false);
    assert.match(capped.warnings?.[0] ?? '', /lesser value of 60 seconds/);
    const renew = await srv.api.call('POST', 'auth/token/renew-self', { token: capped.client_token });
    assert.equal(renew.status, 400, 'a role with renewable=false makes tokens that cannot be renewed');
  });

  it('a token of a deleted role is not renewed; an unknown role creates nothing', async () => {
    await writeOk(srv.api, 'auth/token/roles/short-lived', {});
    const t = await create('auth/token/create/short-lived', { ttl: '10m' }, minter);
    assert.equal((await srv.api.call('POST', 'auth/token/renew-self', { token: t })).status, 200);
    assert.equal((await srv.api.call('DELETE', 'auth/token/roles/short-lived')).status, 204);
    const renew = await srv.api.call('POST', 'auth/token/renew-self', { token: t });
    assert.equal(renew.status, 400);
    assert.match(renew.body.errors[0], /original token role "short-lived" could not be found/);
    const unknown = await srv.api.call('POST', 'auth/token/create/short-lived', { token: minter, body: {} });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.errors[0], /unknown role/);
  });

  it('cofre token create -role=NAME creates against the role (and -type=batch a batch token)', async () => {
    await writeOk(srv.api, 'auth/token/roles/cli', { allowed_policies: ['reader'], path_suffix: 'cli' });
    const made = await runCli(srv.url, minter, 'token', 'create', '-role=cli', '-format=json');
    assert.equal(made.code, 0, made.out);
    const auth = JSON.parse(made.out).auth;
    assert.deepEqual([...auth.policies].sort(), ['default', 'reader']);
    const info = await srv.api.call('POST', 'auth/token/lookup', { body: { token: auth.client_token } });
    assert.equal(info.body.data.path, 'auth/token/create/cli/cli');
    const batch = await runCli(
      srv.url,
      minter,
      'token',
      'create',
      '-role=cli',
      '-type=batch',
      '-ttl=5m',
      '-format=json',
    );
    assert.equal(batch.code, 0, batch.out);
    assert.match(JSON.parse(batch.out).auth.client_token, /^cvb\./);
  });

  it('a child keeps its parent’s bound CIDR blocks unless a role sets its own', async () => {
    await writeOk(srv.api, 'sys/policies/acl/plain-minter', {
      policy: 'path "auth/token/create*" {\n  capabilities = ["update"]\n}\n',
    });
    const core = srv.cofre.core;
    // A parent bound as a login with token_bound_cidrs binds it (the client here is 127.0.0.1).
    const bound = await core.tokens.create({
      policies: ['plain-minter'],
      displayName: 'bound',
      ttl: 600,
      parentHash: '',
      path: 'auth/token/create',
      boundCidrs: ['127.0.0.0/8'],
    });
    const child = await create('auth/token/create', {}, bound.token);
    assert.deepEqual((await core.tokens.lookup(child))!.boundCidrs, ['127.0.0.0/8']);
    const shown = await srv.api.call('POST', 'auth/token/lookup', { body: { token: child } });
    assert.deepEqual(shown.body.data.bound_cidrs, ['127.0.0.0/8']);
    const orphan = await create('auth/token/create-orphan', {}, bound.token);
    assert.equal((await core.tokens.lookup(orphan))!.boundCidrs, undefined, 'an orphan is not a child');
    await writeOk(srv.api, 'auth/token/roles/cidr', { token_bound_cidrs: ['127.0.0.1/32'] });
    const viaRole = await create('auth/token/create/cidr', {}, bound.token);
    assert.deepEqual((await core.tokens.lookup(viaRole))!.boundCidrs, ['127.0.0.1/32']);
  });

  it('a limited token may neither manage roles nor create against a role its policies do not name', async () => {
    await writeOk(srv.api, 'sys/policies/acl/one-role', {
      policy: 'path "auth/token/create/readers" {\n  capabilities = ["update"]\n}\n',
    });
    const limited = await create('auth/token/create', { policies: ['one-role'], ttl: '10m' });
    for (const [method, path] of [
      ['POST', 'auth/token/roles/readers'],
      ['GET', 'auth/token/roles/readers'],
      ['DELETE', 'auth/token/roles/readers'],
      ['LIST', 'auth/token/roles'],
      ['POST', 'auth/token/create/apps'],
      ['POST', 'auth/token/create/readers/../apps'],
      ['POST', 'auth/token/tidy'],
    ] as const) {
      const body = method === 'POST' ? { body: { allowed_policies: ['root'] } } : {};
      const res = await srv.api.call(method, path, { token: limited, ...body });
      assert.ok(res.status === 403 || res.status === 400, `${method} ${path}: ${res.status}`);
      assert.notEqual(res.status, 200);
    }
    assert.equal((await srv.api.call('POST', 'auth/token/create/readers', { token: limited, body: {} })).status, 200);
    const role = await srv.api.call('GET', 'auth/token/roles/readers');
    assert.deepEqual(role.body.data.allowed_policies, ['reader'], 'the role was not changed');
  });
});

describe('revoking tokens by creation path', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'auth/token/roles/a', { path_suffix: 'v1' });
    await writeOk(srv.api, 'auth/token/roles/b', {});
  });
  after(() => srv.stop());

  const make = async (path: string, body: unknown = {}, token?: string): Promise<string> => {
    const res = await srv.api.call('POST', path, { body, ...(token ? { token } : {}) });
    assert.equal(res.status, 200, res.text);
    return res.body.auth.client_token as string;
  };
  const alive = async (token: string): Promise<boolean> =>
    (await srv.api.call('GET', 'auth/token/lookup-self', { token })).status === 200;

  it('sys/leases/revoke-prefix revokes exactly the tokens created under the path, expiring or not', async () => {
    const a1 = await make('auth/token/create/a', { ttl: '1h' });
    const a1Root = await make('auth/token/create/a', { policies: ['root'] }); // no TTL: no lease
    const a1Child = await make('auth/token/create', { ttl: '1h' }, a1);
    await writeOk(srv.api, 'auth/token/roles/a', { path_suffix: 'v2' });
    const a2 = await make('auth/token/create/a', { ttl: '1h' });
    const b = await make('auth/token/create/b', { ttl: '1h' });
    const plain = await make('auth/token/create', { ttl: '1h' });
    const orphan = await make('auth/token/create-orphan', { ttl: '1h' });

    const res = await srv.api.call('PUT', 'sys/leases/revoke-prefix/auth/token/create/a/v1');
    assert.equal(res.status, 204, res.text);
    for (const t of [a1, a1Root, a1Child]) assert.equal(await alive(t), false, 'a token under the prefix survived');
    for (const t of [a2, b, plain, orphan])
      assert.equal(await alive(t), true, 'a token outside the prefix was revoked');

    // "auth/token/create" is a path, not a string prefix: create-orphan is not under it.
    const cli = await runCli(srv.url, srv.rootToken, 'token', 'revoke', '-mode=path', 'auth/token/create');
    assert.equal(cli.code, 0, cli.out);
    assert.match(cli.out, /Success/);
    for (const t of [a2, b, plain]) assert.equal(await alive(t), false, 'the CLI left a token under the path');
    assert.equal(await alive(orphan), true, 'auth/token/create-orphan is not under auth/token/create');
    assert.equal(await alive(srv.rootToken), true);
  });

  it('sys/leases/revoke-force revokes the tokens under the prefix too, as Vault does (it only ignores errors)', async () => {
    for (const role of ['c', 'd']) await writeOk(srv.api, `auth/token/roles/${role}`, {});
    const leased = await make('auth/token/create/c', { ttl: '1h' });
    const unleased = await make('auth/token/create/c', { policies: ['root'] }); // no TTL: no lease
    const child = await make('auth/token/create', { ttl: '1h' }, leased);
    const outside = await make('auth/token/create/d', { ttl: '1h' });
    const res = await srv.api.call('PUT', 'sys/leases/revoke-force/auth/token/create/c');
    assert.equal(res.status, 204, res.text);
    for (const t of [leased, unleased, child]) assert.equal(await alive(t), false, 'revoke-force left a token');
    assert.equal(await alive(outside), true, 'a token outside the prefix was revoked');
    const lookup = await srv.api.call('LIST', 'sys/leases/lookup/auth/token/create/c/');
    assert.equal(lookup.status, 404, `no lease is left under the prefix: ${lookup.text}`);
  });

  it('a caller without sudo on sys/leases/revoke-prefix revokes nothing', async () => {
    const victim = await make('auth/token/create/b', { ttl: '1h' });
    await writeOk(srv.api, 'sys/policies/acl/leases-no-sudo', {
      policy: 'path "sys/leases/revoke-prefix/*" {\n  capabilities = ["update"]\n}\n',
    });
    const limited = await make('auth/token/create', { policies: ['leases-no-sudo'], ttl: '10m' });
    const res = await srv.api.call('PUT', 'sys/leases/revoke-prefix/auth/token/create/b', { token: limited });
    assert.equal(res.status, 403);
    assert.equal(await alive(victim), true);
  });
});

describe('token store details', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  it('sanitises display names as Vault does', async () => {
    for (const [given, shown] of [
      ['ci', 'token-ci'],
      ['my app/ci!', 'token-my-app-ci'],
      ['naïve', 'token-na-ve'],
      ['end--', 'token-end-'],
      ['', 'token'],
    ]) {
      const res = await srv.api.call('POST', 'auth/token/create', { body: { display_name: given, ttl: '1m' } });
      assert.equal(res.status, 200, res.text);
      const info = await srv.api.call('GET', 'auth/token/lookup-self', { token: res.body.auth.client_token });
      assert.equal(info.body.data.display_name, shown, `display_name ${JSON.stringify(given)}`);
    }
  });

  it('answers unknown tokens as Vault does: lookup 403 "bad token", renew 400, revoke 204', async () => {
    for (const token of ['cvs.nope', 'x'.repeat(5000), 'cvb.AAAA']) {
      const res = await srv.api.call('POST', 'auth/token/lookup', { body: { token } });
      assert.equal(res.status, 403, res.text);
      assert.deepEqual(res.body.errors, ['bad token']);
    }
    const missing = await srv.api.call('POST', 'auth/token/lookup', { body: {} });
    assert.equal(missing.status, 400);
    const renew = await srv.api.call('POST', 'auth/token/renew', { body: { token: 'cvs.nope' } });
    assert.equal(renew.status, 400);
    assert.deepEqual(renew.body.errors, ['token not found']);
    assert.equal((await srv.api.call('POST', 'auth/token/revoke', { body: { token: 'cvs.nope' } })).status, 204);
    assert.equal((await srv.api.call('POST', 'auth/token/revoke', { body: {} })).status, 400);
  });

  it('a limited-use token creates no children, service or batch, and the refusal takes a use', async () => {
    await writeOk(srv.api, 'sys/policies/acl/any-minter', {
      policy: 'path "auth/token/create*" {\n  capabilities = ["update"]\n}\n',
    });
    const limited = await srv.api.call('POST', 'auth/token/create', {
      body: { policies: ['any-minter'], num_uses: 3, ttl: '10m' },
    });
    const token = limited.body.auth.client_token as string;
    for (const body of [{}, { type: 'batch' }]) {
      const res = await srv.api.call('POST', 'auth/token/create', { token, body });
      assert.equal(res.status, 400, res.text);
      assert.deepEqual(res.body.errors, ['restricted use token cannot generate child tokens']);
    }
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 200, 'the last use');
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 403);
  });

  it('sudo on the create path allows any policies (not root), and missing policies are warned about', async () => {
    await writeOk(srv.api, 'sys/policies/acl/sudo-minter', {
      policy: 'path "auth/token/create" {\n  capabilities = ["update", "sudo"]\n}\n',
    });
    await writeOk(srv.api, 'sys/policies/acl/plain-create', {
      policy: 'path "auth/token/create" {\n  capabilities = ["update"]\n}\n',
    });
    const sudo = (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['sudo-minter'], ttl: '10m' } }))
      .body.auth.client_token as string;
    const plain = (
      await srv.api.call('POST', 'auth/token/create', { body: { policies: ['plain-create'], ttl: '10m' } })
    ).body.auth.client_token as string;
    const wider = await srv.api.call('POST', 'auth/token/create', { token: sudo, body: { policies: ['not-yet'] } });
    assert.equal(wider.status, 200, wider.text);
    assert.deepEqual([...wider.body.auth.policies].sort(), ['default', 'not-yet']);
    assert.deepEqual(wider.body.warnings, ['Policy "not-yet" does not exist']);
    const refused = await srv.api.call('POST', 'auth/token/create', { token: plain, body: { policies: ['not-yet'] } });
    assert.equal(refused.status, 400);
    const root = await srv.api.call('POST', 'auth/token/create', { token: sudo, body: { policies: ['root'] } });
    assert.equal(root.status, 400, 'sudo is not root');
  });

  it('an expiring root token cannot create a non-expiring one', async () => {
    const expiring = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['root'], ttl: '10m' } });
    assert.equal(expiring.status, 200, expiring.text);
    const forever = await srv.api.call('POST', 'auth/token/create', {
      token: expiring.body.auth.client_token,
      body: { policies: ['root'] },
    });
    assert.equal(forever.status, 400);
    assert.deepEqual(forever.body.errors, ['expiring root tokens cannot create non-expiring root tokens']);
    const root = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['root'] } });
    assert.equal(root.status, 200);
    assert.equal(root.body.auth.lease_duration, 0);
    assert.equal(root.body.auth.renewable, false);
  });

  it('a custom token id may not look like a batch token', async () => {
    const res = await srv.api.call('POST', 'auth/token/create', { body: { id: 'cvb.mine', ttl: '1m' } });
    assert.equal(res.status, 400);
    assert.match(res.body.errors[0], /cannot have the 'cvb.' prefix/);
    assert.equal((await srv.api.call('POST', 'auth/token/create', { body: { id: 'mine', ttl: '1m' } })).status, 200);
  });

  it('tidy repairs dangling indexes and unfinished revocations, answering 202 with a warning', async () => {
    const core = srv.cofre.core;
    const view = new StorageView(core.barrier, 'sys/token/');
    const parent = await srv.api.call('POST', 'auth/token/create', { body: { ttl: '1h' } });
    const child = await srv.api.call('POST', 'auth/token/create', {
      token: parent.body.auth.client_token,
      body: { ttl: '1h' },
    });
    const pending = await srv.api.call('POST', 'auth/token/create', { body: { ttl: '1h' } });
    const parentHash = core.tokens.hashOf(parent.body.auth.client_token);
    const pendingHash = core.tokens.hashOf(pending.body.auth.client_token);
    // What a crash can leave: an accessor naming nothing, a child index naming nothing, a revocation half done,
    // and a child whose parent's entry is gone.
    await view.put('accessor/dangling', Buffer.from('0'.repeat(64)));
    await view.put(`parent/${parentHash}/${'1'.repeat(64)}`, Buffer.alloc(0));
    const pendingEntry = JSON.parse(Buffer.from((await view.get(`id/${pendingHash}`))!).toString('utf8'));
    await view.put(`id/${pendingHash}`, Buffer.from(JSON.stringify({ ...pendingEntry, numUses: -2 })));
    await view.delete(`id/${parentHash}`);
    core.tokens.clear();

    const res = await srv.api.call('POST', 'auth/token/tidy');
    assert.equal(res.status, 202, res.text);
    assert.match(res.body.warnings[0], /Tidy operation successfully started/);
    await tidyDone(core);
    assert.equal(await view.get('accessor/dangling'), undefined);
    assert.deepEqual(await view.list(`parent/${parentHash}/`), []);
    assert.equal(await view.get(`id/${pendingHash}`), undefined, 'the pending revocation was finished');
    const orphaned = await until(
      'the child of a vanished parent is an orphan',
      async () => {
        const r = await srv.api.call('GET', 'auth/token/lookup-self', { token: child.body.auth.client_token });
        return r.status === 200 && r.body.data.orphan === true ? r : undefined;
      },
      5000,
    );
    assert.equal(orphaned.status, 200);
    // Live tokens are untouched.
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self')).status, 200);
  });

  it('tidy revokes the leases of a token that no longer exists, and only those', async () => {
    const core = srv.cofre.core;
    const live = await srv.api.call('POST', 'auth/token/create', { body: { ttl: '1h' } });
    const liveHash = core.tokens.hashOf(live.body.auth.client_token);
    // Leases as a request of each token would have left them (the token lease type revokes nothing that exists).
    const lease = (owner: string) =>
      core.expiration.register({
        mountPrefix: 'auth/token/',
        requestPath: 'tidy-test',
        secret: { type: 'token', internal: { hash: 'f'.repeat(64) }, ttl: 3600, maxTtl: 3600, renewable: false },
        ttl: 3600,
        maxTtl: 3600,
        tokenHash: owner,
        tokenExpireTime: 0,
      });
    const orphaned = await lease('e'.repeat(64));
    const kept = await lease(liveHash);
    assert.equal((await srv.api.call('POST', 'auth/token/tidy')).status, 202);
    await tidyDone(core);
    const lookup = (id: string) => srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: id } });
    assert.equal((await lookup(orphaned.leaseId)).status, 400, 'the lease of a vanished token was kept');
    assert.equal((await lookup(kept.leaseId)).status, 200, 'the lease of a live token was revoked');
  });
});

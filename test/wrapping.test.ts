// Response wrapping end to end (Vault's X-Vault-Wrap-TTL and sys/wrapping/*) and the cubbyhole it rests on, over
// real HTTP against a real server on a real SQLite file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import nodeVault from 'node-vault';
import { revokeUnsent } from '../src/core/wrapping.js';
import { enableFileAudit, runCli, startServer, tempDir, until, writeOk, type InProcessServer } from './support.js';

const INVALID = 'wrapping token is not valid or does not exist';

describe('response wrapping', () => {
  let srv: InProcessServer;
  const wrapped = (method: string, path: string, ttl: string, body?: unknown) =>
    srv.api.call(method, path, { headers: { 'x-vault-wrap-ttl': ttl }, ...(body !== undefined ? { body } : {}) });
  /** Unwraps as the holder of the wrapping token does (it is the request's own token). */
  const unwrapSelf = (token: string) => srv.api.call('PUT', 'sys/wrapping/unwrap', { token, body: {} });
  /** Unwraps as another token's holder does (`vault unwrap TOKEN` while logged in). */
  const unwrapOther = (token: string) => srv.api.call('PUT', 'sys/wrapping/unwrap', { body: { token } });
  const childToken = async (policies = ['default'], extra: Record<string, unknown> = {}) =>
    (await srv.api.call('POST', 'auth/token/create', { body: { policies, ...extra } })).body.auth
      .client_token as string;

  before(async () => {
    srv = await startServer({ initialised: true });
    await writeOk(srv.api, 'secret/data/app', { data: { password: 'kv-wrapped-value-7f3a' } });
  });
  after(() => srv.stop());

  it('wraps a KV read: the client gets only wrap_info, and unwrapping gives the original answer once', async () => {
    const plain = await srv.api.call('GET', 'secret/data/app');
    const res = await wrapped('GET', 'secret/data/app', '60s');
    assert.equal(res.status, 200, res.text);
    assert.doesNotMatch(res.text, /kv-wrapped-value/);
    assert.equal(res.body.data, null);
    assert.equal(res.body.auth, null);
    const info = res.body.wrap_info;
    assert.equal(info.ttl, 60);
    assert.equal(info.creation_path, 'secret/data/app');
    assert.ok(!Number.isNaN(Date.parse(info.creation_time)), info.creation_time);
    assert.match(info.token, /^cvs\./);
    assert.equal(typeof info.accessor, 'string');
    assert.equal(info.wrapped_accessor, undefined, 'only a wrapped token has a wrapped_accessor');

    const unwrapped = await unwrapSelf(info.token);
    assert.equal(unwrapped.status, 200, unwrapped.text);
    assert.equal(unwrapped.body.data.data.password, 'kv-wrapped-value-7f3a');
    const { request_id: _a, ...original } = plain.body;
    const { request_id: _b, ...fromWrap } = unwrapped.body;
    assert.deepEqual(fromWrap, original, 'the original answer, as it would have been sent');

    const again = await unwrapSelf(info.token);
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, { errors: [INVALID] });
    const againOther = await unwrapOther(info.token);
    assert.equal(againOther.status, 400);
    assert.deepEqual(againOther.body, { errors: [INVALID] });
  });

  it('wraps a token create: wrapped_accessor names the token, which works once unwrapped', async () => {
    const res = await wrapped('POST', 'auth/token/create', '5m', { policies: ['default'] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.auth, null);
    const info = res.body.wrap_info;
    assert.equal(info.creation_path, 'auth/token/create');
    assert.equal(typeof info.wrapped_accessor, 'string');
    const unwrapped = await unwrapOther(info.token);
    assert.equal(unwrapped.status, 200, unwrapped.text);
    assert.equal(unwrapped.body.auth.accessor, info.wrapped_accessor);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: unwrapped.body.auth.client_token });
    assert.equal(self.status, 200, self.text);
    assert.equal((await unwrapOther(info.token)).status, 400);
  });

  it('wraps an AppRole secret-id, which logs in once unwrapped', async () => {
    await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
    await writeOk(srv.api, 'auth/approle/role/ci', { token_policies: ['default'] });
    const roleId = (await srv.api.call('GET', 'auth/approle/role/ci/role-id')).body.data.role_id as string;
    const res = await wrapped('POST', 'auth/approle/role/ci/secret-id', '120', {});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.wrap_info.ttl, 120);
    assert.equal(res.body.wrap_info.creation_path, 'auth/approle/role/ci/secret-id');
    const unwrapped = await unwrapOther(res.body.wrap_info.token);
    assert.equal(unwrapped.status, 200, unwrapped.text);
    const secretId = unwrapped.body.data.secret_id as string;
    const login = await srv.api.call('POST', 'auth/approle/login', {
      token: '',
      body: { role_id: roleId, secret_id: secretId },
    });
    assert.equal(login.status, 200, login.text);
    // A wrapped login: the token it issues is named by wrapped_accessor, and is the unwrapped answer's.
    const secretId2 = (
      await unwrapOther((await wrapped('POST', 'auth/approle/role/ci/secret-id', '60s', {})).body.wrap_info.token)
    ).body.data.secret_id as string;
    const wrappedLogin = await srv.api.call('POST', 'auth/approle/login', {
      token: '',
      headers: { 'x-vault-wrap-ttl': '60s' },
      body: { role_id: roleId, secret_id: secretId2 },
    });
    assert.equal(wrappedLogin.status, 200, wrappedLogin.text);
    assert.equal(wrappedLogin.body.auth, null);
    const loginInfo = wrappedLogin.body.wrap_info;
    assert.equal(loginInfo.creation_path, 'auth/approle/login');
    const loggedIn = await unwrapOther(loginInfo.token);
    assert.equal(loggedIn.body.auth.accessor, loginInfo.wrapped_accessor);
    assert.equal(
      (await srv.api.call('GET', 'auth/token/lookup-self', { token: loggedIn.body.auth.client_token })).status,
      200,
    );
  });

  it('of 16 parallel unwraps of one token, exactly one gets the answer', async () => {
    // An audit device puts a durable write between each request's checks and its handler: the races overlap.
    await enableFileAudit(srv.api, join(srv.dir, 'race-audit.log'));
    const info = (await wrapped('GET', 'secret/data/app', '60s')).body.wrap_info;
    // Sixteen connections open before the race, so the unwraps reach the server in one burst.
    await Promise.all(Array.from({ length: 16 }, () => srv.api.call('GET', 'sys/health')));
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? unwrapOther(info.token) : unwrapSelf(info.token))),
    );
    const winners = results.filter((r) => r.status === 200);
    assert.equal(winners.length, 1, results.map((r) => `${r.status} ${r.text}`).join('\n'));
    results.forEach((res, i) => {
      if (res.status === 200) return;
      assert.doesNotMatch(res.text, /kv-wrapped-value/);
      // Someone else's unwrap loses as any unwrap of a used token; the holder's own loses its token's one use.
      if (i % 2 === 0) assert.deepEqual([res.status, res.body], [400, { errors: [INVALID] }]);
      else assert.ok(res.status === 403 || (res.status === 400 && res.body.errors[0] === INVALID), res.text);
    });
    assert.equal((await unwrapOther(info.token)).status, 400);
    await srv.api.call('DELETE', 'sys/audit/file');
  });

  it('an expired wrapping token neither unwraps nor looks up', async () => {
    const info = (await wrapped('GET', 'secret/data/app', '1s')).body.wrap_info;
    assert.equal(info.ttl, 1);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const late = await unwrapOther(info.token);
    assert.equal(late.status, 400);
    assert.deepEqual(late.body, { errors: [INVALID] });
    const lookup = await srv.api.call('PUT', 'sys/wrapping/lookup', { token: '', body: { token: info.token } });
    assert.equal(lookup.status, 400);
  });

  it('lookup needs no token of its own and does not use the wrapping token up', async () => {
    const info = (await wrapped('GET', 'secret/data/app', '300')).body.wrap_info;
    for (let i = 0; i < 3; i++) {
      const lookup = await srv.api.call('PUT', 'sys/wrapping/lookup', { token: '', body: { token: info.token } });
      assert.equal(lookup.status, 200, lookup.text);
      assert.deepEqual(Object.keys(lookup.body.data).sort(), ['creation_path', 'creation_time', 'creation_ttl']);
      assert.equal(lookup.body.data.creation_ttl, 300);
      assert.equal(lookup.body.data.creation_path, 'secret/data/app');
      assert.equal(lookup.body.data.creation_time, info.creation_time);
    }
    const byQuery = await srv.api.call('GET', `sys/wrapping/lookup?token=${encodeURIComponent(info.token)}`, {
      token: '',
    });
    assert.equal(byQuery.status, 200, byQuery.text);
    const asHolder = await srv.api.call('GET', 'sys/wrapping/lookup', { token: info.token });
    assert.equal(asHolder.status, 200, asHolder.text);
    assert.equal((await unwrapSelf(info.token)).status, 200, 'still unwraps after the lookups');
    const junk = await srv.api.call('PUT', 'sys/wrapping/lookup', { token: '', body: { token: 'cvs.nothing' } });
    assert.deepEqual([junk.status, junk.body], [400, { errors: [INVALID] }]);
    const ordinary = await srv.api.call('PUT', 'sys/wrapping/lookup', { token: '', body: { token: srv.rootToken } });
    assert.equal(ordinary.status, 400, 'a token that is not a wrapping token is not one');
  });

  it('a wrapping token can do nothing but unwrap, and probing does not use it up', async () => {
    const info = (await wrapped('GET', 'secret/data/app', '60s')).body.wrap_info;
    const probes: [string, string, unknown?][] = [
      ['GET', 'secret/data/app'],
      ['GET', 'auth/token/lookup-self'],
      ['POST', 'auth/token/create', {}],
      ['GET', 'cubbyhole/wrapinfo'],
      ['PUT', 'cubbyhole/other', { a: 1 }],
      ['LIST', 'cubbyhole'],
      ['DELETE', 'cubbyhole/response'],
      ['PUT', 'sys/wrapping/wrap', { a: 1 }],
      ['PUT', 'sys/wrapping/rewrap', {}],
      ['GET', 'sys/mounts'],
      ['PUT', 'sys/policies/acl/mine', { policy: 'path "*" { capabilities = ["sudo"] }' }],
    ];
    for (const [method, path, body] of probes) {
      const res = await srv.api.call(method, path, { token: info.token, ...(body !== undefined ? { body } : {}) });
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
    }
    const policy = await srv.api.call('PUT', 'sys/policies/acl/response-wrapping', {
      body: { policy: 'path "*" { capabilities = ["read"] }' },
    });
    assert.equal(policy.status, 400, 'the response-wrapping policy cannot be widened');
    const unwrapped = await unwrapSelf(info.token);
    assert.equal(unwrapped.status, 200, unwrapped.text);
  });

  it('no token but a wrapping token gets the response-wrapping policy: none can pass for one', async () => {
    const forged = await srv.api.call('POST', 'auth/token/create', {
      body: { policies: ['response-wrapping'], no_default_policy: true },
    });
    assert.deepEqual([forged.status, forged.body], [400, { errors: ['cannot assign policy "response-wrapping"'] }]);
    const mixed = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['Response-Wrapping'] } });
    assert.equal(mixed.status, 400, mixed.text);
    await writeOk(srv.api, 'auth/approle/role/forger', { token_policies: ['response-wrapping'] });
    const roleId = (await srv.api.call('GET', 'auth/approle/role/forger/role-id')).body.data.role_id as string;
    const secretId = (await srv.api.call('POST', 'auth/approle/role/forger/secret-id', { body: {} })).body.data
      .secret_id as string;
    const login = await srv.api.call('POST', 'auth/approle/login', {
      token: '',
      body: { role_id: roleId, secret_id: secretId },
    });
    assert.equal(login.status, 400, login.text);
    assert.doesNotMatch(login.text, /client_token/);
  });

  it('a failing request is not wrapped, and a bad wrap TTL refuses the request before it runs', async () => {
    const missing = await wrapped('GET', 'secret/data/nothing-here', '60s');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.wrap_info, undefined);
    const count = async () => (await srv.api.call('LIST', 'auth/token/accessors')).body.data.keys.length as number;
    const before = await count();
    for (const ttl of ['soon', '-5s', '500ms', '1h-']) {
      const res = await wrapped('POST', 'auth/token/create', ttl, { policies: ['default'] });
      assert.equal(res.status, 400, `${ttl}: ${res.text}`);
      assert.match(res.body.errors[0], /X-Vault-Wrap-TTL/);
      assert.doesNotMatch(res.text, /client_token|cvs\./);
    }
    assert.equal(await count(), before, 'no token was created, and no wrapping token either');
    // As Vault's HTTP layer answers them itself: a client sending VAULT_WRAP_TTL everywhere still reads status.
    const status = await wrapped('GET', 'sys/seal-status', '60s');
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.sealed, false);
    const tokens = await count();
    const leader = await srv.api.call('GET', 'sys/leader', { token: '', headers: { 'x-vault-wrap-ttl': '60s' } });
    assert.equal(leader.status, 200, leader.text);
    assert.equal(leader.body.wrap_info, undefined);
    assert.equal(await count(), tokens, 'an anonymous client cannot make the server mint wrapping tokens');
    const zero = await wrapped('GET', 'secret/data/app', '0');
    assert.equal(zero.body.wrap_info, null, 'a wrap TTL of 0 asks for no wrapping, as in Vault');
  });

  it('an answer that cannot be wrapped is an error, and what it handed out does not outlive it', async () => {
    const count = async () => (await srv.api.call('LIST', 'auth/token/accessors')).body.data.keys.length as number;
    const before = await count();
    // Prometheus text is not JSON: nothing a client could unwrap.
    const metrics = await wrapped('GET', 'sys/metrics?format=prometheus', '60s');
    assert.equal(metrics.status, 400, metrics.text);
    assert.equal(await count(), before, 'no wrapping token is left behind');
    // What the request handler does when a wrap fails after the answer handed out a token.
    const made = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
    const token = made.body.auth.client_token as string;
    await revokeUnsent(srv.cofre.core, { auth: made.body.auth });
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 403);
  });

  it('policies bound the wrap TTL (max_wrapping_ttl, min_wrapping_ttl)', async () => {
    await writeOk(srv.api, 'sys/policies/acl/wrap-bound', {
      policy:
        'path "secret/data/app" {\n capabilities = ["read"]\n min_wrapping_ttl = "10s"\n max_wrapping_ttl = "1m"\n}\n',
    });
    const token = await childToken(['wrap-bound']);
    const read = (ttl?: string) =>
      srv.api.call('GET', 'secret/data/app', { token, ...(ttl ? { headers: { 'x-vault-wrap-ttl': ttl } } : {}) });
    assert.equal((await read()).status, 403, 'wrapping is mandatory');
    assert.equal((await read('2m')).status, 403, 'too long');
    assert.equal((await read('5s')).status, 403, 'too short');
    const ok = await read('30s');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.wrap_info.ttl, 30);
  });

  it('sys/wrapping/wrap wraps posted data (and only when asked to wrap); rewrap moves it to a new token', async () => {
    const unasked = await srv.api.call('PUT', 'sys/wrapping/wrap', { body: { a: 'b' } });
    assert.deepEqual(
      [unasked.status, unasked.body],
      [400, { errors: ['endpoint requires response wrapping to be used'] }],
    );
    const res = await wrapped('PUT', 'sys/wrapping/wrap', '10m', { fruit: 'quince', n: 3 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.wrap_info.creation_path, 'sys/wrapping/wrap');
    const first = res.body.wrap_info.token as string;
    const rewrapped = await srv.api.call('PUT', 'sys/wrapping/rewrap', { body: { token: first } });
    assert.equal(rewrapped.status, 200, rewrapped.text);
    const second = rewrapped.body.wrap_info;
    assert.notEqual(second.token, first);
    assert.equal(second.ttl, 600, 'the original TTL');
    assert.equal(second.creation_path, 'sys/wrapping/wrap', 'the original creation path');
    assert.equal((await unwrapOther(first)).status, 400, 'the old token is gone');
    const unwrapped = await unwrapOther(second.token);
    assert.equal(unwrapped.status, 200, unwrapped.text);
    assert.deepEqual(unwrapped.body.data, { fruit: 'quince', n: 3 });
  });

  it('cofre -wrap-ttl prints wrap_info as Vault’s CLI does, and cofre unwrap gives the answer once', async () => {
    const got = await runCli(srv.url, srv.rootToken, 'kv', 'get', '-wrap-ttl=60s', 'secret/app');
    assert.equal(got.code, 0, got.out);
    assert.doesNotMatch(got.out, /kv-wrapped-value/);
    for (const key of ['wrapping_token', 'wrapping_accessor', 'wrapping_token_creation_time']) {
      assert.match(got.out, new RegExp(`^${key} `, 'm'), got.out);
    }
    assert.match(got.out, /^wrapping_token_ttl\s+1m$/m);
    assert.match(got.out, /^wrapping_token_creation_path\s+secret\/data\/app$/m);
    const token = /^wrapping_token\s+(\S+)$/m.exec(got.out)![1]!;

    const unwrapped = await runCli(srv.url, srv.rootToken, 'unwrap', token);
    assert.equal(unwrapped.code, 0, unwrapped.out);
    assert.match(unwrapped.out, /kv-wrapped-value-7f3a/);
    const again = await runCli(srv.url, srv.rootToken, 'unwrap', token);
    assert.equal(again.code, 1);
    assert.match(again.out, /wrapping token is not valid or does not exist/);

    const created = await runCli(srv.url, srv.rootToken, 'token', 'create', '-wrap-ttl=5m', '-format=json');
    assert.equal(created.code, 0, created.out);
    const info = JSON.parse(created.out).wrap_info;
    assert.equal(info.ttl, 300);
    assert.equal(typeof info.wrapped_accessor, 'string');
    // The wrapping token as the command's own token: `VAULT_TOKEN=... vault unwrap`.
    const self = await runCli(srv.url, info.token, 'unwrap', '-field=token_accessor');
    assert.equal(self.code, 0, self.out);
    assert.equal(self.out, info.wrapped_accessor);

    const field = await runCli(srv.url, srv.rootToken, 'write', '-field=wrapping_token', 'sys/wrapping/wrap', 'a=b');
    assert.equal(field.code, 0, field.out);
    assert.match(field.out, /^cvs\./, 'sys/wrapping/wrap is wrapped for 5m by default, as Vault’s client does');
    const lookup = await srv.api.call('PUT', 'sys/wrapping/lookup', { body: { token: field.out } });
    assert.equal(lookup.body.data.creation_ttl, 300);
    const status = await runCli(srv.url, srv.rootToken, 'status', '-wrap-ttl=1m');
    assert.equal(status.code, 0, status.out);
    assert.match(status.out, /Sealed\s+false/);
    const listed = await runCli(srv.url, srv.rootToken, 'kv', 'list', '-wrap-ttl=1m', 'secret/');
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /^wrapping_token_creation_path\s+secret\/metadata\/$/m);
    const bogus = await runCli(srv.url, srv.rootToken, 'read', '-wrap-ttl=whenever', 'secret/data/app');
    assert.equal(bogus.code, 2, bogus.out);
  });

  it('the audit log shows wrap_info with the token HMAC’d, never the wrapped secret; unwrap is on record', async () => {
    const auditPath = join(srv.dir, 'audit.log');
    await enableFileAudit(srv.api, auditPath);
    await writeOk(srv.api, 'secret/data/audited', { data: { pin: 'audit-only-secret-91c2' } });
    const info = (await wrapped('GET', 'secret/data/audited', '60s')).body.wrap_info;
    assert.equal((await unwrapOther(info.token)).status, 200);
    const log = readFileSync(auditPath, 'utf8');
    assert.doesNotMatch(log, /audit-only-secret-91c2/);
    assert.ok(!log.includes(info.token), 'the wrapping token is never in clear');
    assert.ok(!log.includes(info.accessor), 'nor its accessor');
    const entries = log
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const wrappedEntry = entries.find((e) => e.type === 'response' && e.response?.wrap_info);
    assert.ok(wrappedEntry, 'the wrapped response is audited with its wrap_info');
    assert.match(wrappedEntry.response.wrap_info.token, /^hmac-sha256:/);
    assert.equal(wrappedEntry.response.wrap_info.creation_path, 'secret/data/audited');
    assert.equal(wrappedEntry.response.data, null);
    const hashed = await srv.api.call('PUT', 'sys/audit-hash/file', { body: { input: info.token } });
    assert.equal(wrappedEntry.response.wrap_info.token, hashed.body.data.hash);
    const unwrapEntries = entries.filter((e) => e.request?.path === 'sys/wrapping/unwrap');
    assert.deepEqual(
      unwrapEntries.map((e) => e.type),
      ['request', 'response'],
    );
    assert.equal(unwrapEntries[0].request.data.token, hashed.body.data.hash, 'the unwrap names the same HMAC');
    await srv.api.call('DELETE', 'sys/audit/file');
  });
});

describe('the cubbyhole', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ initialised: true });
  });
  after(() => srv.stop());
  const newToken = async (extra: Record<string, unknown> = {}) =>
    (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'], ...extra } })).body.auth
      .client_token as string;
  const cubbyholeUuid = async () => (await srv.api.call('GET', 'sys/mounts')).body.data['cubbyhole/'].uuid as string;
  /**
   * Storage keys of a token's cubbyhole, as the SQLite store holds them (read through the adapter: the server
   * holds the file's lock). The keys are in clear; the values are ciphertext.
   */
  const rowsOf = async (token: string): Promise<string[]> => {
    const prefix = `logical/${await cubbyholeUuid()}/${srv.cofre.core.tokens.hashOf(token)}/`;
    const walk = async (at: string): Promise<string[]> => {
      const out: string[] = [];
      for (const key of await srv.cofre.storage.list(at)) {
        if (key.endsWith('/')) out.push(...(await walk(at + key)));
        else out.push(at + key);
      }
      return out;
    };
    return walk(prefix);
  };

  it('is mounted on every server, local, and can be neither disabled nor mounted again', async () => {
    const mounts = (await srv.api.call('GET', 'sys/mounts')).body.data;
    assert.equal(mounts['cubbyhole/'].type, 'cubbyhole');
    assert.equal(mounts['cubbyhole/'].local, true);
    const disable = await srv.api.call('DELETE', 'sys/mounts/cubbyhole');
    assert.equal(disable.status, 400, disable.text);
    const again = await srv.api.call('POST', 'sys/mounts/cubby2', { body: { type: 'cubbyhole' } });
    assert.equal(again.status, 400, again.text);
    const over = await srv.api.call('POST', 'sys/mounts/cubbyhole/sub', { body: { type: 'kv' } });
    assert.equal(over.status, 400, over.text);
    assert.equal((await srv.api.call('GET', 'sys/mounts')).body.data['cubbyhole/'].type, 'cubbyhole');
  });

  it('reads, writes, lists and deletes as Vault’s, each token in its own', async () => {
    const a = await newToken();
    const b = await newToken();
    const as = (token: string, method: string, path: string, body?: unknown) =>
      srv.api.call(method, path, { token, ...(body !== undefined ? { body } : {}) });
    assert.equal((await as(a, 'PUT', 'cubbyhole/note', { msg: 'for a only' })).status, 204);
    assert.equal((await as(a, 'PUT', 'cubbyhole/dir/deep', { n: 1 })).status, 204);
    const read = await as(a, 'GET', 'cubbyhole/note');
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.data, { msg: 'for a only' });
    assert.deepEqual((await as(a, 'LIST', 'cubbyhole')).body.data.keys, ['dir/', 'note']);
    assert.deepEqual((await as(a, 'LIST', 'cubbyhole/dir')).body.data.keys, ['deep']);
    assert.equal((await as(a, 'PUT', 'cubbyhole/empty', {})).status, 400, 'missing data fields');

    // Another token, root included, sees nothing of it, whatever path it crafts.
    for (const other of [b, srv.rootToken]) {
      assert.equal((await as(other, 'GET', 'cubbyhole/note')).status, 404);
      assert.equal((await as(other, 'LIST', 'cubbyhole')).status, 404);
      const hashA = srv.cofre.core.tokens.hashOf(a);
      assert.equal((await as(other, 'GET', `cubbyhole/${hashA}/note`)).status, 404);
    }
    assert.equal((await as(b, 'PUT', 'cubbyhole/note', { msg: 'b’s own' })).status, 204);
    assert.deepEqual((await as(a, 'GET', 'cubbyhole/note')).body.data, { msg: 'for a only' });
    assert.equal((await as(b, 'DELETE', 'cubbyhole/note')).status, 204);
    assert.deepEqual((await as(a, 'GET', 'cubbyhole/note')).body.data, { msg: 'for a only' }, 'b deleted its own');
    assert.equal((await as(a, 'DELETE', 'cubbyhole/note')).status, 204);
    assert.equal((await as(a, 'GET', 'cubbyhole/note')).status, 404);
  });

  it('a limited token writes its cubbyhole only as its policies allow', async () => {
    await writeOk(srv.api, 'sys/policies/acl/no-cubby', { policy: 'path "cubbyhole/*" { capabilities = ["deny"] }' });
    const denied = await newToken({ policies: ['default', 'no-cubby'] });
    assert.equal((await srv.api.call('PUT', 'cubbyhole/x', { token: denied, body: { a: 1 } })).status, 403);
    const noDefault = await newToken({ policies: ['nothing'], no_default_policy: true });
    assert.equal((await srv.api.call('PUT', 'cubbyhole/x', { token: noDefault, body: { a: 1 } })).status, 403);
  });

  it('revoking a token destroys its cubbyhole: the rows are gone from the SQLite file', async () => {
    const token = await newToken();
    await srv.api.call('PUT', 'cubbyhole/one', { token, body: { v: 'one' } });
    await srv.api.call('PUT', 'cubbyhole/two/three', { token, body: { v: 'three' } });
    assert.equal((await rowsOf(token)).length, 2);
    const revoke = await srv.api.call('POST', 'auth/token/revoke-self', { token, body: {} });
    assert.equal(revoke.status, 204, revoke.text);
    assert.deepEqual(await rowsOf(token), []);
    assert.equal((await srv.api.call('GET', 'cubbyhole/one', { token })).status, 403);
    const fresh = await newToken();
    assert.equal((await srv.api.call('LIST', 'cubbyhole', { token: fresh })).status, 404);
    assert.equal((await srv.api.call('GET', 'cubbyhole/one', { token: fresh })).status, 404);
  });

  it('writes racing the token’s revocation leave nothing behind', async () => {
    // An audit device puts a durable write between a request's authorisation and its handler: a wider window.
    await enableFileAudit(srv.api, join(srv.dir, 'race-audit.log'));
    let refused = 0;
    for (let round = 0; round < 6; round++) {
      const token = await newToken();
      // Writers that keep writing until the token is refused, while it is revoked under them.
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; ; i++) {
          const res = await srv.api.call('PUT', `cubbyhole/race/${w}/${i}`, { token, body: { v: i } });
          if (res.status === 403) return void refused++;
          assert.equal(res.status, 204, res.text);
        }
      };
      const writers = Array.from({ length: 8 }, (_, w) => writer(w));
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal((await srv.api.call('POST', 'auth/token/revoke', { body: { token } })).status, 204);
      await Promise.all(writers);
      assert.deepEqual(await rowsOf(token), [], `round ${round}`);
    }
    assert.equal(refused, 6 * 8);
    await srv.api.call('DELETE', 'sys/audit/file');
  });

  it('a parent’s revocation and a token’s expiry destroy the cubbyholes too', async () => {
    await writeOk(srv.api, 'sys/policies/acl/creator', {
      policy: 'path "auth/token/create" { capabilities = ["update"] }',
    });
    const parent = await newToken({ policies: ['default', 'creator'] });
    const child = (await srv.api.call('POST', 'auth/token/create', { token: parent, body: {} })).body.auth
      .client_token as string;
    await srv.api.call('PUT', 'cubbyhole/c', { token: child, body: { v: 1 } });
    assert.equal((await rowsOf(child)).length, 1);
    await writeOk(srv.api, 'auth/token/revoke', { token: parent });
    assert.deepEqual(await rowsOf(child), []);

    const brief = await newToken({ ttl: '1s' });
    await srv.api.call('PUT', 'cubbyhole/soon', { token: brief, body: { v: 1 } });
    assert.equal((await rowsOf(brief)).length, 1);
    // Nobody presents the token again: its lease ends it, and its cubbyhole with it.
    await until(
      'the expired token’s cubbyhole is gone',
      async () => ((await rowsOf(brief)).length === 0 ? true : undefined),
      10_000,
    ).catch(async (err: Error) => {
      // Say what became of the token's lease (revoke attempts, the last error): a bare timeout tells nothing.
      const expiration = srv.cofre.core.expiration;
      const leases = await expiration.listPrefix('auth/token/');
      const states = await Promise.all(leases.map((id) => expiration.lookup(id).catch((e: Error) => e.message)));
      throw new Error(`${err.message}; token leases: ${JSON.stringify(states)}`);
    });
  });

  it('a wrapping token’s cubbyhole is destroyed when it is unwrapped', async () => {
    const res = await srv.api.call('PUT', 'sys/wrapping/wrap', {
      headers: { 'x-vault-wrap-ttl': '60' },
      body: { k: 'v' },
    });
    const token = res.body.wrap_info.token as string;
    assert.deepEqual((await rowsOf(token)).map((k) => k.split('/').pop()).sort(), ['response', 'wrapinfo']);
    assert.equal((await srv.api.call('PUT', 'sys/wrapping/unwrap', { token, body: {} })).status, 200);
    assert.deepEqual(await rowsOf(token), []);
  });
});

describe('a wrapping token across a restart', () => {
  it('expires on time after the server was down, its cubbyhole with it', async () => {
    const dir = tempDir('wrap-restart');
    let srv = await startServer({ initialised: true, dir });
    const keys = srv.keys;
    try {
      const res = await srv.api.call('PUT', 'sys/wrapping/wrap', {
        headers: { 'x-vault-wrap-ttl': '2s' },
        body: { kept: 'until-expiry' },
      });
      const token = res.body.wrap_info.token as string;
      const hash = srv.cofre.core.tokens.hashOf(token);
      const uuid = (await srv.api.call('GET', 'sys/mounts')).body.data['cubbyhole/'].uuid as string;
      const prefix = `logical/${uuid}/${hash}/`;
      assert.equal((await srv.cofre.storage.list(prefix)).length, 2);
      await srv.stop();
      srv = await startServer({ initialised: false, dir });
      for (const key of keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
      await until(
        'the wrapping token’s cubbyhole is gone',
        async () => ((await srv.cofre.storage.list(prefix)).length === 0 ? true : undefined),
        10_000,
      );
      const late = await srv.api.call('PUT', 'sys/wrapping/unwrap', { token: '', body: { token } });
      assert.deepEqual([late.status, late.body], [400, { errors: [INVALID] }]);
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('node-vault (a client we did not write) wraps and unwraps', () => {
  it('reads a secret wrapped through its request options, and unwraps it with its unwrap command', async () => {
    const srv = await startServer({ initialised: true });
    try {
      const vault = nodeVault({ apiVersion: 'v1', endpoint: srv.url, token: srv.rootToken });
      await vault.write('secret/data/nv', { data: { answer: 'node-vault-wrapped-42' } });
      const wrappedRead = await vault.read('secret/data/nv', { headers: { 'X-Vault-Wrap-TTL': '2m' } });
      assert.equal(wrappedRead.data, null);
      assert.equal(wrappedRead.wrap_info.ttl, 120);
      const unwrapped = await vault.unwrap({ token: wrappedRead.wrap_info.token });
      assert.equal(unwrapped.data.data.answer, 'node-vault-wrapped-42');
      await assert.rejects(
        vault.unwrap({ token: wrappedRead.wrap_info.token }),
        (err: { response?: { statusCode: number; body?: { errors?: string[] } } }) =>
          err.response?.statusCode === 400 && err.response.body?.errors?.[0] === INVALID,
      );
    } finally {
      await srv.stop();
    }
  });
});

describe('hvac (Python, a client we did not write) wraps and unwraps', () => {
  it('reads with wrap_ttl, looks the token up and unwraps it once', async () => {
    const srv = await startServer({ initialised: true });
    try {
      await writeOk(srv.api, 'secret/data/py', { data: { answer: 'hvac-wrapped-7' } });
      const script = `
import hvac, sys
c = hvac.Client(url=sys.argv[1], token=sys.argv[2])
w = c.read("secret/data/py", wrap_ttl="90s")
print("wrapped:", w["data"] is None, w["wrap_info"]["ttl"])
l = hvac.Client(url=sys.argv[1]).adapter.post("/v1/sys/wrapping/lookup", json={"token": w["wrap_info"]["token"]})
print("lookup:", l["data"]["creation_path"])
print("unwrapped:", c.sys.unwrap(w["wrap_info"]["token"])["data"]["data"]["answer"])
try:
    c.sys.unwrap(w["wrap_info"]["token"])
    print("second: no error")
except hvac.exceptions.InvalidRequest as e:
    print("second:", e.errors)
`;
      const run = await promisify(execFile)('python3', ['-c', script, srv.url, srv.rootToken], {
        timeout: 60_000,
      }).catch((err: { stderr?: string }) =>
        assert.fail(`hvac is needed (pip install hvac; .ci/run installs it): ${err.stderr}`),
      );
      assert.match(run.stdout, /wrapped: True 90/);
      assert.match(run.stdout, /lookup: secret\/data\/py/);
      assert.match(run.stdout, /unwrapped: hvac-wrapped-7/);
      assert.match(run.stdout, /second: \['wrapping token is not valid or does not exist'\]/);
    } finally {
      await srv.stop();
    }
  });
});

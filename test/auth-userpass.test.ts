import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodeVault from 'node-vault';
import { MAX_WAITING } from '../src/auth/userpass/password-hash.js';
import { enableFileAudit, startServer, writeOk, type InProcessServer } from './support.js';

/** The userpass auth method (issue 17) on a real in-process server, through raw HTTP and node-vault. */
describe('userpass auth method', () => {
  let srv: InProcessServer;
  const login = (username: string, password: unknown, remote = srv) =>
    remote.api.call('POST', `auth/userpass/login/${username}`, { token: '', body: { password } });
  const stored = async (username: string): Promise<string | undefined> => {
    const bytes = await srv.cofre.core.mounts.match('auth/userpass/')!.storage.get(`user/${username}`);
    return bytes && Buffer.from(bytes).toString('utf8');
  };

  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'sys/auth/userpass', { type: 'userpass' });
    await writeOk(srv.api, 'sys/policies/acl/dev', {
      policy: 'path "secret/data/dev/*" {\n  capabilities = ["read"]\n}\n',
    });
    await writeOk(srv.api, 'secret/data/dev/db', { data: { password: 'from-cofre' } });
  });
  after(() => srv?.stop());

  it('the Vault login flow over HTTP: a user logs in and gets its policies, TTL and metadata', async () => {
    await writeOk(srv.api, 'auth/userpass/users/alice', {
      password: 'alice-pw',
      token_policies: 'dev',
      token_ttl: '1h',
    });
    const res = await login('alice', 'alice-pw');
    assert.equal(res.status, 200, res.text);
    const auth = res.body.auth;
    assert.deepEqual(auth.policies, ['default', 'dev']);
    assert.deepEqual(auth.metadata, { username: 'alice' });
    assert.ok(auth.lease_duration > 3500 && auth.lease_duration <= 3600, String(auth.lease_duration));
    assert.equal(auth.renewable, true);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: auth.client_token });
    assert.equal(self.body.data.display_name, 'userpass-alice');
    assert.equal(self.body.data.path, 'auth/userpass/login/alice');
    const read = await srv.api.call('GET', 'secret/data/dev/db', { token: auth.client_token });
    assert.equal(read.body.data.data.password, 'from-cofre');
    assert.equal((await srv.api.call('GET', 'secret/data/other', { token: auth.client_token })).status, 403);
  });

  it('usernames are case-insensitive, and a read shows the token fields but never the password', async () => {
    await writeOk(srv.api, 'auth/userpass/users/Mary', { password: 'mary-pw', policies: ['dev'], ttl: 600 });
    assert.equal((await login('MARY', 'mary-pw')).status, 200);
    assert.equal((await login('mary', 'mary-pw')).status, 200);
    const read = await srv.api.call('GET', 'auth/userpass/users/mArY');
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.data.token_policies, ['dev']);
    assert.equal(read.body.data.token_ttl, 600);
    assert.equal(read.body.data.ttl, 600);
    assert.deepEqual(read.body.data.token_bound_cidrs, []);
    assert.ok(!read.text.includes('mary-pw'));
    assert.ok(!/password|salt|hash/.test(Object.keys(read.body.data).join(' ')), Object.keys(read.body.data).join());
    const list = await srv.api.call('LIST', 'auth/userpass/users');
    assert.ok(list.body.data.keys.includes('mary'));
    assert.ok(!list.body.data.keys.includes('Mary'));
  });

  it('node-vault logs in with userpassLogin and uses the token', async () => {
    const root = nodeVault({ apiVersion: 'v1', endpoint: srv.url, token: srv.rootToken });
    await root.write('sys/auth/up2', { type: 'userpass' });
    await root.write('auth/up2/users/nv', { password: 'nv-pw', policies: 'dev' });
    const client = nodeVault({ apiVersion: 'v1', endpoint: srv.url });
    const res = await client.userpassLogin({ mount_point: 'up2', username: 'nv', password: 'nv-pw' });
    assert.deepEqual(res.auth.policies, ['default', 'dev']);
    assert.equal(client.token, res.auth.client_token, 'node-vault switches to the token it logged in with');
    assert.equal((await client.read('secret/data/dev/db')).data.data.password, 'from-cofre');
    await assert.rejects(
      nodeVault({ apiVersion: 'v1', endpoint: srv.url }).userpassLogin({
        mount_point: 'up2',
        username: 'nv',
        password: 'wrong',
      }),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 400,
    );
  });

  it('a wrong password and an unknown user are refused alike, saying neither which', async () => {
    await writeOk(srv.api, 'auth/userpass/users/bob', { password: 'bob-pw' });
    const wrong = await login('bob', 'not-bob-pw');
    const unknown = await login('nobody', 'bob-pw');
    assert.equal(wrong.status, 400);
    assert.equal(unknown.status, 400);
    assert.deepEqual(wrong.body, { errors: ['invalid username or password'] });
    assert.deepEqual(unknown.body, wrong.body);
    assert.equal((await login('bob', '')).status, 400);
    assert.equal((await srv.api.call('POST', 'auth/userpass/login/bob', { token: '', body: {} })).status, 400);
  });

  it('stores a salted hash only: no password, and two users with one password have different hashes', async () => {
    await writeOk(srv.api, 'auth/userpass/users/twin-a', { password: 'same-password-123' });
    await writeOk(srv.api, 'auth/userpass/users/twin-b', { password: 'same-password-123' });
    const a = await stored('twin-a');
    const b = await stored('twin-b');
    assert.ok(a && b, 'both users are stored');
    for (const record of [a, b]) {
      assert.ok(!record.includes('same-password-123'));
      assert.ok(!record.includes(Buffer.from('same-password-123').toString('base64')));
    }
    const ha = JSON.parse(a).password_hash;
    const hb = JSON.parse(b).password_hash;
    assert.equal(ha.algorithm, 'scrypt');
    assert.ok(ha.n >= 2 ** 15 && ha.r >= 8 && ha.p >= 1, 'the parameters are stored with the hash');
    assert.notEqual(ha.salt, hb.salt);
    assert.notEqual(ha.hash, hb.hash);
    // The file holds only ciphertext besides.
    assert.ok(!readFileSync(join(srv.dir, 'cofre.db')).includes('same-password-123'));
  });

  it('a hash made with weaker parameters still logs in, and the login rehashes it with the current ones', async () => {
    const storage = srv.cofre.core.mounts.match('auth/userpass/')!.storage;
    const salt = randomBytes(16);
    const weak = { algorithm: 'scrypt', n: 1024, r: 8, p: 1, salt: salt.toString('base64') };
    const hash = scryptSync('legacy-pw', salt, 32, { N: 1024, r: 8, p: 1 }).toString('base64');
    await storage.put('user/legacy', Buffer.from(JSON.stringify({ password_hash: { ...weak, hash } })));
    assert.equal((await login('legacy', 'wrong')).status, 400);
    assert.equal(JSON.parse((await stored('legacy'))!).password_hash.n, 1024, 'a failed login changes nothing');
    assert.equal((await login('legacy', 'legacy-pw')).status, 200);
    const raised = JSON.parse((await stored('legacy'))!).password_hash;
    assert.ok(raised.n >= 2 ** 15 && raised.p >= 1, JSON.stringify(raised));
    assert.notEqual(raised.salt, weak.salt);
    assert.equal((await login('legacy', 'legacy-pw')).status, 200);
  });

  it('a password can be changed through users/:username/password; the old one stops working', async () => {
    await writeOk(srv.api, 'auth/userpass/users/carol', { password: 'old-pw' });
    const before = JSON.parse((await stored('carol'))!).password_hash.hash;
    await writeOk(srv.api, 'auth/userpass/users/carol/password', { password: 'new-pw' });
    assert.notEqual(JSON.parse((await stored('carol'))!).password_hash.hash, before);
    assert.equal((await login('carol', 'old-pw')).status, 400);
    assert.equal((await login('carol', 'new-pw')).status, 200);
    // An update without a password keeps it.
    await writeOk(srv.api, 'auth/userpass/users/carol', { token_ttl: 120 });
    assert.equal((await login('carol', 'new-pw')).status, 200);
    const missing = await srv.api.call('POST', 'auth/userpass/users/nobody-here/password', {
      body: { password: 'x' },
    });
    assert.equal(missing.status, 400);
    assert.equal((await srv.api.call('POST', 'auth/userpass/users/carol/password', { body: {} })).status, 400);
    // Creating a user without a password is refused.
    const noPassword = await srv.api.call('POST', 'auth/userpass/users/dave', { body: { token_policies: 'dev' } });
    assert.equal(noPassword.status, 400);
    assert.equal((await srv.api.call('GET', 'auth/userpass/users/dave')).status, 404);
  });

  it('an unknown user costs about as much as a wrong password (median of 20 logins each)', async () => {
    await writeOk(srv.api, 'auth/userpass/users/timed', { password: 'timed-pw' });
    const wrong: number[] = [];
    const unknown: number[] = [];
    const time = async (into: number[], username: string) => {
      const start = process.hrtime.bigint();
      const res = await login(username, 'guess');
      into.push(Number(process.hrtime.bigint() - start) / 1e6);
      assert.equal(res.status, 400);
    };
    // Interleaved, so that a busy moment of the machine falls on both.
    for (let i = 0; i < 20; i++) {
      await time(wrong, 'timed');
      await time(unknown, `ghost-${i}`);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const ratio = median(unknown) / median(wrong);
    const shown = `unknown ${median(unknown).toFixed(1)} ms, wrong password ${median(wrong).toFixed(1)} ms`;
    // Without the dummy hash an unknown user answers in about 1% of the time; with it, about 100%.
    assert.ok(ratio > 0.5 && ratio < 2, shown);
    assert.ok(median(wrong) > 5, `a wrong password is checked by a slow hash (${shown})`);
  });

  it('renewal is refused once the user is deleted, and once its policies changed', async () => {
    const renew = (token: string) =>
      srv.api.call('POST', 'auth/token/renew-self', { token, body: { increment: '1h' } });
    await writeOk(srv.api, 'auth/userpass/users/erin', { password: 'erin-pw', token_policies: 'dev' });
    const first = (await login('erin', 'erin-pw')).body.auth.client_token;
    assert.equal((await renew(first)).status, 200);
    await writeOk(srv.api, 'auth/userpass/users/erin/policies', { token_policies: 'dev,other' });
    assert.deepEqual((await srv.api.call('GET', 'auth/userpass/users/erin')).body.data.token_policies, [
      'dev',
      'other',
    ]);
    const changed = await renew(first);
    assert.equal(changed.status, 400, changed.text);
    assert.match(changed.body.errors[0], /policies .* changed/);
    // The policies endpoint changed nothing else: the password still works, and gives the new policies.
    const second = await login('erin', 'erin-pw');
    assert.deepEqual(second.body.auth.policies, ['default', 'dev', 'other']);
    assert.equal((await renew(second.body.auth.client_token)).status, 200);
    assert.equal((await srv.api.call('DELETE', 'auth/userpass/users/erin')).status, 204);
    const gone = await renew(second.body.auth.client_token);
    assert.equal(gone.status, 400, gone.text);
    assert.match(gone.body.errors[0], /no longer exists/);
    assert.equal((await login('erin', 'erin-pw')).status, 400);
  });

  it('token_bound_cidrs: a login from outside the blocks is refused, from inside it binds the token', async () => {
    await writeOk(srv.api, 'auth/userpass/users/far', { password: 'far-pw', token_bound_cidrs: '10.0.0.0/8' });
    assert.equal((await login('far', 'far-pw')).status, 403);
    await writeOk(srv.api, 'auth/userpass/users/near', { password: 'near-pw', token_bound_cidrs: ['127.0.0.1/32'] });
    const near = await login('near', 'near-pw');
    assert.equal(near.status, 200, near.text);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: near.body.auth.client_token });
    assert.equal(self.status, 200, 'the token works from inside the blocks');
    const entry = await srv.cofre.core.tokens.lookup(near.body.auth.client_token);
    assert.deepEqual(entry?.boundCidrs, ['127.0.0.1/32']);
    const bad = await srv.api.call('POST', 'auth/userpass/users/bad-cidr', {
      body: { password: 'x', token_bound_cidrs: 'not-a-cidr' },
    });
    assert.equal(bad.status, 400);
  });

  it('a limited token probing userpass paths it may not use gets 403', async () => {
    await writeOk(srv.api, 'auth/userpass/users/frank', { password: 'frank-pw' });
    await writeOk(srv.api, 'auth/userpass/users/henry', { password: 'henry-pw' });
    await writeOk(srv.api, 'sys/policies/acl/own-password', {
      policy: 'path "auth/userpass/users/frank/password" {\n  capabilities = ["update"]\n}\n',
    });
    const token = (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['own-password'] } })).body.auth
      .client_token;
    const probes: [string, string, unknown?][] = [
      ['GET', 'auth/userpass/users/frank'],
      ['GET', 'auth/userpass/users/does-not-exist'],
      ['LIST', 'auth/userpass/users'],
      ['POST', 'auth/userpass/users/frank', { token_policies: 'root' }],
      ['POST', 'auth/userpass/users/mallory', { password: 'x', token_policies: 'root' }],
      ['POST', 'auth/userpass/users/frank/policies', { token_policies: 'root' }],
      ['POST', 'auth/userpass/users/henry/password', { password: 'taken-over' }],
      ['DELETE', 'auth/userpass/users/henry'],
      ['GET', 'auth/userpass/users/frank/password'],
    ];
    for (const [method, path, body] of probes) {
      const res = await srv.api.call(method, path, { token, ...(body ? { body } : {}) });
      assert.equal(res.status, 403, `${method} ${path}: ${res.status} ${res.text}`);
    }
    assert.equal((await login('henry', 'henry-pw')).status, 200, 'henry keeps his password');
    assert.equal((await srv.api.call('GET', 'auth/userpass/users/mallory')).status, 404);
    // What the policy allows works.
    const own = await srv.api.call('POST', 'auth/userpass/users/frank/password', {
      token,
      body: { password: 'frank-new' },
    });
    assert.equal(own.status, 204, own.text);
    assert.equal((await login('frank', 'frank-new')).status, 200);
  });

  it('crafted usernames and over-long passwords get clean 4xx answers', async () => {
    const clean4xx = (res: { status: number; text: string }, what: string) => {
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${res.text}`);
      assert.ok(!res.text.includes('client_token'), what);
    };
    await writeOk(srv.api, 'auth/userpass/users/victim', { password: 'victim-pw' });
    // Sent as written: fetch would resolve the dot segments before they reach the server.
    const raw = (path: string, body: unknown, token = srv.rootToken) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const payload = JSON.stringify(body);
        const req = request(`${srv.url}/v1/auth/userpass/${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token ? { 'x-vault-token': token } : {}) },
        });
        req.path = `/v1/auth/userpass/${path}`;
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(payload);
      });
    const names = [
      'a%2Fb',
      'a/b',
      '..',
      '%2e%2e',
      'a/../victim',
      'x/%2e%2e/victim',
      '.hidden',
      'trailing.',
      'sp%20ace',
    ];
    for (const name of names) {
      clean4xx(await raw(`login/${name}`, { password: 'victim-pw' }, ''), `login/${name}`);
      clean4xx(await raw(`users/${name}`, { password: 'x' }), `users/${name}`);
    }
    assert.deepEqual(
      (await srv.api.call('LIST', 'auth/userpass/users')).body.data.keys.filter((k: string) => /[/.%]/.test(k)),
      [],
    );
    // Names that are object keys in JavaScript are names like any other.
    for (const name of ['constructor', '__proto__', 'hasOwnProperty', 'toString']) {
      const res = await login(name, 'x');
      assert.equal(res.status, 400, `login/${name}: ${res.text}`);
      assert.deepEqual(res.body, { errors: ['invalid username or password'] });
      assert.equal((await srv.api.call('GET', `auth/userpass/users/${name}`)).status, 404, name);
    }
    await writeOk(srv.api, 'auth/userpass/users/__proto__', { password: 'proto-pw', token_policies: 'dev' });
    assert.equal((await login('__proto__', 'proto-pw')).status, 200);
    assert.equal((await login('constructor', 'proto-pw')).status, 400);
    assert.deepEqual((await srv.api.call('GET', 'auth/userpass/users/__proto__')).body.data.token_policies, ['dev']);
    // A body whose keys are prototype names.
    const protoBody = await srv.api.call('POST', 'auth/userpass/login/victim', {
      token: '',
      raw: '{"__proto__": {"password": "victim-pw"}, "constructor": {"password": "victim-pw"}}',
    });
    assert.equal(protoBody.status, 400, protoBody.text);
    clean4xx(await login('victim', { nested: 'victim-pw' }), 'an object as password');
    clean4xx(await login('victim', ['victim-pw']), 'a list as password');

    // Passwords are bounded at 1024 bytes, everywhere, before any hashing.
    const long = 'p'.repeat(1025);
    const longs = [
      await login('victim', long),
      await login('nobody', long),
      await srv.api.call('POST', 'auth/userpass/users/longpw', { body: { password: long } }),
      await srv.api.call('POST', 'auth/userpass/users/victim', { body: { password: long } }),
      await srv.api.call('POST', 'auth/userpass/users/victim/password', { body: { password: long } }),
      await srv.api.call('POST', 'auth/userpass/users/victim/password', { body: { password: 'é'.repeat(513) } }),
    ];
    for (const res of longs) {
      assert.equal(res.status, 400, res.text);
      assert.match(res.body.errors[0], /longer than 1024 bytes/);
      assert.ok(!res.text.includes('pppp'));
    }
    const huge = await login('victim', 'p'.repeat(512 * 1024));
    assert.equal(huge.status, 400);
    assert.equal((await srv.api.call('GET', 'auth/userpass/users/longpw')).status, 404);
    await writeOk(srv.api, 'auth/userpass/users/maxpw', { password: 'm'.repeat(1024) });
    assert.equal((await login('maxpw', 'm'.repeat(1024))).status, 200);
    assert.equal((await login('victim', 'victim-pw')).status, 200, 'the victim keeps its password');
  });

  it('a flood of logins is refused with 429 beyond a bounded queue, and a real login works right after', async () => {
    await writeOk(srv.api, 'auth/userpass/users/flooded', { password: 'flooded-pw', token_policies: 'dev' });
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 4 * MAX_WAITING }, (_, i) => login(i % 2 ? 'flooded' : 'nobody-at-all', `wrong-${i}`)),
    );
    const statuses = answers.map((a) => a.status);
    assert.ok(
      statuses.every((s) => s === 400 || s === 429),
      `only refusals: ${[...new Set(statuses)].join(',')}`,
    );
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length >= MAX_WAITING, `the queue is bounded: ${limited.length} of ${answers.length} got 429`);
    assert.deepEqual(limited[0]!.body, { errors: ['too many password checks in progress; try again shortly'] });
    assert.ok(answers.filter((a) => a.status === 400).length >= MAX_WAITING, 'the queued checks still ran');
    const ok = await login('flooded', 'flooded-pw');
    assert.equal(ok.status, 200, `${ok.text} (after ${Date.now() - started} ms)`);
  });

  it('no password reaches the audit log or an error message', async () => {
    const auditPath = join(srv.dir, 'audit.log');
    await enableFileAudit(srv.api, auditPath);
    const secret = 'Audit-Me-Not-7f3a';
    await writeOk(srv.api, 'auth/userpass/users/gina', { password: secret });
    await writeOk(srv.api, 'auth/userpass/users/gina/password', { password: `${secret}-2` });
    const answers = [
      await login('gina', secret),
      await login('gina', `${secret}-2`),
      await login('nobody', secret),
      await login('gina', `${secret}${'x'.repeat(1100)}`),
    ];
    assert.deepEqual(
      answers.map((r) => r.status),
      [400, 200, 400, 400],
    );
    for (const res of answers) assert.ok(!res.text.includes(secret));
    await srv.api.call('DELETE', 'sys/audit/file');
    const log = readFileSync(auditPath, 'utf8');
    assert.ok(log.includes('auth/userpass/login/gina'), 'the logins are on record');
    assert.ok(!log.includes(secret));
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { enableFileAudit, runCli, startServer, type InProcessServer } from './support.js';

/** The inverse of the server's encoding: base64 (unpadded) of token XOR otp, as `vault operator generate-root -decode`. */
function decode(encoded: string, otp: string): string {
  const bytes = Buffer.from(encoded, 'base64');
  const pad = Buffer.from(otp, 'utf8');
  assert.equal(bytes.length, pad.length, 'the encoded token has the OTP length');
  return Buffer.from(bytes.map((b, i) => b ^ pad[i]!)).toString('utf8');
}

/** A share of the same length whose bytes are changed: it combines into a wrong unseal key. */
function forge(hexShare: string): string {
  const bytes = Buffer.from(hexShare, 'hex');
  bytes[3] = bytes[3]! ^ 0x5a;
  return bytes.toString('hex');
}

describe('sys/generate-root', () => {
  let srv: InProcessServer;
  let other: InProcessServer;
  let auditFile = '';

  before(async () => {
    srv = await startServer({ shares: 3, threshold: 2 });
    other = await startServer({ shares: 3, threshold: 2 });
    auditFile = join(srv.dir, 'audit.log');
    await enableFileAudit(srv.api, auditFile);
  });
  after(async () => {
    await srv?.stop();
    await other?.stop();
  });

  const call = (method: string, path: string, body?: unknown) =>
    srv.api.call(method, path, { token: '', ...(body === undefined ? {} : { body }) });

  it('reports no attempt, unauthenticated, with the threshold and the OTP length', async () => {
    const status = await call('GET', 'sys/generate-root/attempt');
    assert.equal(status.status, 200, status.text);
    assert.deepEqual(status.body, {
      nonce: '',
      started: false,
      progress: 0,
      required: 2,
      complete: false,
      encoded_token: '',
      encoded_root_token: '',
      pgp_fingerprint: '',
      otp: '',
      otp_length: 36,
    });
  });

  it('refuses a PGP key and an OTP of the wrong length, clearly', async () => {
    const pgp = await call('PUT', 'sys/generate-root/attempt', { pgp_key: 'mQENBF...' });
    assert.equal(pgp.status, 400);
    assert.match(pgp.body.errors[0], /pgp_key is not supported/);
    const short = await call('PUT', 'sys/generate-root/attempt', { otp: 'abc' });
    assert.equal(short.status, 400);
    assert.deepEqual(short.body.errors, ['OTP string is wrong length']);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.started, false);
  });

  it('makes a working root token from a threshold of shares, XORed with the OTP the server generated', async () => {
    const start = await call('PUT', 'sys/generate-root/attempt', {});
    assert.equal(start.status, 200, start.text);
    assert.equal(start.body.started, true);
    assert.match(start.body.nonce, /^[0-9a-f-]{36}$/);
    assert.match(start.body.otp, /^[0-9A-Za-z]{36}$/);
    const { nonce, otp } = start.body;

    const again = await call('PUT', 'sys/generate-root/attempt', {});
    assert.equal(again.status, 400);
    assert.deepEqual(again.body.errors, ['root generation already in progress']);
    const status = await call('GET', 'sys/generate-root/attempt');
    assert.equal(status.body.otp, '', 'the OTP is shown once, in the answer that started the attempt');
    assert.equal(status.body.nonce, nonce);

    const wrongNonce = await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce: 'not-the-nonce' });
    assert.equal(wrongNonce.status, 400);
    assert.match(wrongNonce.body.errors[0], /^incorrect nonce supplied/);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.progress, 0);

    const first = await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.progress, 1);
    assert.equal(first.body.complete, false);
    assert.equal(first.body.encoded_token, '');
    assert.equal(first.body.started, true);
    assert.equal(first.body.nonce, nonce);
    assert.equal(first.body.otp_length, 0, "Vault's update answer carries no otp_length");

    const duplicate = await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    assert.equal(duplicate.status, 400);
    assert.deepEqual(duplicate.body.errors, ['given key has already been provided during this generation operation']);
    // The same share in base64 is the same share.
    const b64 = Buffer.from(srv.keys[0]!, 'hex').toString('base64');
    assert.equal((await call('PUT', 'sys/generate-root/update', { key: b64, nonce })).status, 400);

    const last = await call('PUT', 'sys/generate-root/update', { key: srv.keys[1], nonce });
    assert.equal(last.status, 200, last.text);
    assert.equal(last.body.complete, true);
    assert.equal(last.body.progress, 2);
    assert.equal(last.body.required, 2);
    assert.equal(last.body.encoded_root_token, last.body.encoded_token);
    assert.doesNotMatch(last.body.encoded_token, /=$/, 'unpadded base64, as Vault');
    const token = decode(last.body.encoded_token, otp);
    assert.match(token, /^cvs\./);
    assert.notEqual(token, srv.rootToken);

    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token });
    assert.equal(self.status, 200, self.text);
    assert.deepEqual(self.body.data.policies, ['root']);
    assert.equal(self.body.data.ttl, 0);
    // A root token does what only root may: a sudo path.
    assert.equal((await srv.api.call('GET', 'sys/audit', { token })).status, 200);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.started, false, 'the attempt is over');
  });

  it('accepts an OTP the client made (older clients) and never echoes it', async () => {
    const otp = 'A'.repeat(20) + 'b'.repeat(16);
    const start = await call('PUT', 'sys/generate-root/attempt', { otp });
    assert.equal(start.status, 200, start.text);
    assert.equal(start.body.otp, '');
    const { nonce } = start.body;
    await call('PUT', 'sys/generate-root/update', { key: srv.keys[2], nonce });
    const done = await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    assert.equal(done.body.complete, true);
    const token = decode(done.body.encoded_token, otp);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
  });

  it('a wrong share fails the attempt as Vault: no token, progress reset, the attempt and nonce kept', async () => {
    const start = await call('PUT', 'sys/generate-root/attempt', {});
    const { nonce, otp } = start.body;
    await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    const wrong = await call('PUT', 'sys/generate-root/update', { key: forge(srv.keys[1]!), nonce });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.errors[0], /^root generation aborted/);
    assert.equal(wrong.body.encoded_token, undefined);
    const status = await call('GET', 'sys/generate-root/attempt');
    assert.equal(status.body.started, true);
    assert.equal(status.body.nonce, nonce);
    assert.equal(status.body.progress, 0);

    // Genuine shares of another server's store are just as wrong here.
    await call('PUT', 'sys/generate-root/update', { key: other.keys[0], nonce });
    const foreign = await call('PUT', 'sys/generate-root/update', { key: other.keys[1], nonce });
    assert.equal(foreign.status, 400);
    assert.match(foreign.body.errors[0], /^root generation aborted/);

    // Malformed input is refused before it counts.
    for (const key of ['zz-not-a-key', 'abcd', Buffer.alloc(40, 7).toString('hex')]) {
      const bad = await call('PUT', 'sys/generate-root/update', { key, nonce });
      assert.equal(bad.status, 400, key);
    }
    assert.equal((await call('PUT', 'sys/generate-root/update', { nonce })).status, 400);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.progress, 0);

    // The same attempt then succeeds with right shares.
    await call('PUT', 'sys/generate-root/update', { key: srv.keys[1], nonce });
    const done = await call('PUT', 'sys/generate-root/update', { key: srv.keys[2], nonce });
    assert.equal(done.body.complete, true, done.text);
    assert.equal(
      (await srv.api.call('GET', 'auth/token/lookup-self', { token: decode(done.body.encoded_token, otp) })).status,
      200,
    );
  });

  it('two last shares racing complete the attempt once: one token, the other share refused', async () => {
    const { nonce } = (await call('PUT', 'sys/generate-root/attempt', {})).body;
    await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    const [a, b] = await Promise.all([
      call('PUT', 'sys/generate-root/update', { key: srv.keys[1], nonce }),
      call('PUT', 'sys/generate-root/update', { key: srv.keys[2], nonce }),
    ]);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [200, 400]);
    const loser = a.status === 400 ? a : b;
    assert.deepEqual(loser.body.errors, ['no root generation in progress']);
  });

  it('cancel ends the attempt; an update then has nothing to add to', async () => {
    const { nonce } = (await call('PUT', 'sys/generate-root/attempt', {})).body;
    await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    const cancel = await call('DELETE', 'sys/generate-root/attempt');
    assert.equal(cancel.status, 204);
    const status = await call('GET', 'sys/generate-root/attempt');
    assert.equal(status.body.started, false);
    assert.equal(status.body.progress, 0);
    const update = await call('PUT', 'sys/generate-root/update', { key: srv.keys[1], nonce });
    assert.equal(update.status, 400);
    assert.deepEqual(update.body.errors, ['no root generation in progress']);
  });

  it('a seal drops the attempt, and the paths answer 503 while sealed', async () => {
    await call('PUT', 'sys/generate-root/attempt', {});
    assert.equal((await srv.api.call('PUT', 'sys/seal')).status, 204);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).status, 503);
    for (const key of srv.keys.slice(0, 2)) await call('PUT', 'sys/unseal', { key });
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.started, false);
  });

  it('the CLI starts, takes shares with -nonce and decodes the token with -decode and -otp', async () => {
    const init = await runCli(srv.url, '', 'operator', 'generate-root', '-init', '-format=json');
    assert.equal(init.code, 0, init.out);
    const started = JSON.parse(init.out);
    assert.equal(started.started, true);
    const status = await runCli(srv.url, '', 'operator', 'generate-root', '-status');
    assert.equal(status.code, 0, status.out);
    assert.match(status.out, /Started\s+true/);
    assert.match(status.out, /Progress\s+0\/2/);
    const first = await runCli(srv.url, '', 'operator', 'generate-root', `-nonce=${started.nonce}`, srv.keys[1]!);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /Progress\s+1\/2/);
    const noNonce = await runCli(srv.url, '', 'operator', 'generate-root', srv.keys[2]!);
    assert.equal(noNonce.code, 1);
    assert.match(noNonce.out, /nonce/);
    const last = await runCli(srv.url, '', 'operator', 'generate-root', `-nonce=${started.nonce}`, srv.keys[2]!);
    assert.equal(last.code, 0, last.out);
    const encoded = /Encoded Token\s+(\S+)/.exec(last.out)?.[1];
    assert.ok(encoded, last.out);
    const decoded = await runCli(srv.url, '', 'operator', 'generate-root', `-decode=${encoded}`, `-otp=${started.otp}`);
    assert.equal(decoded.code, 0, decoded.out);
    const token = decoded.out.trim();
    assert.match(token, /^cvs\./);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);

    // An OTP of the client's own, as older Vault CLIs do it: -generate-otp, then -init -otp.
    const otp = (await runCli(srv.url, '', 'operator', 'generate-root', '-generate-otp')).out.trim();
    assert.match(otp, /^[0-9A-Za-z]{36}$/);
    const own = await runCli(srv.url, '', 'operator', 'generate-root', '-init', `-otp=${otp}`, '-format=json');
    assert.equal(own.code, 0, own.out);
    assert.equal(JSON.parse(own.out).otp, '');
    const cancel = await runCli(srv.url, '', 'operator', 'generate-root', '-cancel');
    assert.equal(cancel.code, 0, cancel.out);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.started, false);
  });

  it('hvac (Python, a client we did not write) generates a root token with the server-made OTP', async () => {
    const script = `
import base64, hvac, sys
c = hvac.Client(url=sys.argv[1])
start = c.sys.start_root_token_generation()
assert start["started"] and len(start["otp"]) == start["otp_length"], start
for key in sys.argv[2:]:
    r = c.sys.generate_root(key=key, nonce=start["nonce"])
assert r["complete"], r
enc = base64.b64decode(r["encoded_token"] + "=" * (-len(r["encoded_token"]) % 4))
print(bytes(a ^ b for a, b in zip(enc, start["otp"].encode())).decode())
`;
    // Not spawnSync: the server runs in this process and must answer meanwhile.
    const run = await promisify(execFile)('python3', ['-c', script, srv.url, srv.keys[2]!, srv.keys[1]!], {
      timeout: 60_000,
    }).catch((err: { stderr?: string }) => assert.fail(`hvac is needed (pip install hvac): ${err.stderr}`));
    const token = run.stdout.trim();
    assert.match(token, /^cvs\./);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).body.data.policies[0], 'root');
  });

  it('the audit log holds no key share, OTP or encoded token in clear', async () => {
    const { nonce, otp } = (await call('PUT', 'sys/generate-root/attempt', {})).body;
    await call('PUT', 'sys/generate-root/update', { key: srv.keys[0], nonce });
    const done = await call('PUT', 'sys/generate-root/update', { key: srv.keys[1], nonce });
    assert.equal(done.body.complete, true);
    const log = readFileSync(auditFile, 'utf8');
    assert.match(log, /sys\/generate-root\/update/);
    for (const secret of [...srv.keys, otp, done.body.encoded_token, decode(done.body.encoded_token, otp)]) {
      assert.equal(log.includes(secret), false, 'a secret value reached the audit log');
    }
  });
});

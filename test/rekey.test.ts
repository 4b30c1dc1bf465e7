import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  apiClient,
  enableFileAudit,
  freePort,
  runCli,
  startServer,
  tempDir,
  writeOk,
  type Api,
  type InProcessServer,
} from './support.js';

/** A share of the same length whose bytes are changed: it combines into a wrong unseal key. */
function forge(hexShare: string): string {
  const bytes = Buffer.from(hexShare, 'hex');
  bytes[3] = bytes[3]! ^ 0x5a;
  return bytes.toString('hex');
}

/** Gives keys to sys/unseal, one by one; true if the server ends unsealed. Resets the progress first. */
async function unsealWith(api: Api, keys: string[]): Promise<boolean> {
  await api.call('PUT', 'sys/unseal', { token: '', body: { reset: true } });
  let sealed = true;
  for (const key of keys) {
    const res = await api.call('PUT', 'sys/unseal', { token: '', body: { key } });
    if (res.status === 200) sealed = res.body.sealed;
    else break; // a wrong set of shares: 400, progress reset
  }
  return !sealed;
}

describe('sys/rekey', () => {
  let srv: InProcessServer;
  let dir = '';
  let keys: string[] = [];
  let root = '';
  /** Every share the server handed out or took, old and new: none may reach the audit log. */
  const seen: string[] = [];
  const call = (method: string, path: string, body?: unknown) =>
    srv.api.call(method, path, { token: '', ...(body === undefined ? {} : { body }) });

  before(async () => {
    dir = tempDir('rekey');
    srv = await startServer({ shares: 3, threshold: 2, dir });
    keys = srv.keys;
    root = srv.rootToken;
    await enableFileAudit(srv.api, join(dir, 'audit.log'));
    await writeOk(srv.api, 'secret/data/kept', { data: { value: 'before the rekey' } });
  });
  after(async () => {
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports no rekey, unauthenticated, in Vault shape', async () => {
    const status = await call('GET', 'sys/rekey/init');
    assert.equal(status.status, 200, status.text);
    assert.deepEqual(status.body, {
      nonce: '',
      started: false,
      t: 0,
      n: 0,
      progress: 0,
      required: 2,
      pgp_fingerprints: null,
      backup: false,
      verification_required: false,
    });
  });

  it('refuses PGP keys, backups and impossible share counts, clearly, without starting', async () => {
    const cases: [unknown, RegExp][] = [
      [{ secret_shares: 3, secret_threshold: 2, pgp_keys: ['a', 'b', 'c'] }, /pgp_keys are not supported/],
      [{ secret_shares: 3, secret_threshold: 2, backup: true }, /backup/],
      [{ secret_shares: 2, secret_threshold: 3 }, /threshold greater than the total shares/],
      [{ secret_shares: 3, secret_threshold: 1 }, /threshold must be greater than one/],
      [{ secret_shares: 0, secret_threshold: 0 }, /shares must be at least one/],
      [{ secret_shares: 300, secret_threshold: 2 }, /less than 256/],
      [{ secret_threshold: 2 }, /secret_shares/],
      [{ secret_shares: 'three', secret_threshold: 2 }, /secret_shares/],
    ];
    for (const [body, message] of cases) {
      const res = await call('PUT', 'sys/rekey/init', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.errors[0], message);
    }
    assert.equal((await call('GET', 'sys/rekey/init')).body.started, false);
  });

  it('needs the current threshold of old shares: nonce, duplicates and wrong shares are refused', async () => {
    const init = await call('PUT', 'sys/rekey/init', { secret_shares: 5, secret_threshold: 3 });
    assert.equal(init.status, 200, init.text);
    assert.equal(init.body.started, true);
    assert.equal(init.body.n, 5);
    assert.equal(init.body.t, 3);
    assert.equal(init.body.required, 2);
    const { nonce } = init.body;
    assert.deepEqual((await call('PUT', 'sys/rekey/init', { secret_shares: 3, secret_threshold: 2 })).body.errors, [
      'rekey already in progress',
    ]);

    const wrongNonce = await call('PUT', 'sys/rekey/update', { key: keys[0], nonce: 'nope' });
    assert.equal(wrongNonce.status, 400);
    assert.match(wrongNonce.body.errors[0], /^incorrect nonce supplied/);
    const first = await call('PUT', 'sys/rekey/update', { key: keys[0], nonce });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.progress, 1);
    assert.equal(first.body.keys, undefined);
    const duplicate = await call('PUT', 'sys/rekey/update', { key: keys[0], nonce });
    assert.equal(duplicate.status, 400);
    assert.deepEqual(duplicate.body.errors, ['given key has already been provided during this rekey operation']);

    const wrong = await call('PUT', 'sys/rekey/update', { key: forge(keys[1]!), nonce });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.errors[0], /^root key verification failed/);
    const status = await call('GET', 'sys/rekey/init');
    assert.equal(status.body.started, true, 'the attempt stays, as in Vault');
    assert.equal(status.body.nonce, nonce);
    assert.equal(status.body.progress, 0);
    // The old shares still unseal: nothing was written.
    assert.equal((await call('GET', 'sys/seal-status')).body.n, 3);

    const cancel = await call('DELETE', 'sys/rekey/init');
    assert.equal(cancel.status, 204);
    assert.equal((await call('GET', 'sys/rekey/init')).body.started, false);
    assert.deepEqual((await call('PUT', 'sys/rekey/update', { key: keys[0], nonce })).body.errors, [
      'no barrier rekey in progress',
    ]);
  });

  it('answers new shares in hex and base64; they unseal after a seal and a restart, the old ones no more', async () => {
    const init = await call('PUT', 'sys/rekey/init', { secret_shares: 5, secret_threshold: 3 });
    const { nonce } = init.body;
    await call('PUT', 'sys/rekey/update', { key: keys[2], nonce });
    const done = await call('PUT', 'sys/rekey/update', { key: keys[0], nonce });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.complete, true);
    assert.equal(done.body.nonce, nonce);
    assert.equal(done.body.verification_required, false);
    assert.equal(done.body.keys.length, 5);
    assert.deepEqual(
      done.body.keys_base64,
      done.body.keys.map((k: string) => Buffer.from(k, 'hex').toString('base64')),
    );
    const newKeys = done.body.keys as string[];
    for (const k of newKeys) assert.equal(keys.includes(k), false);
    const seal = await call('GET', 'sys/seal-status');
    assert.equal(seal.body.n, 5);
    assert.equal(seal.body.t, 3);
    assert.equal((await call('GET', 'sys/rekey/init')).body.started, false);
    assert.equal((await call('GET', 'sys/generate-root/attempt')).body.required, 3);

    assert.equal((await srv.api.call('PUT', 'sys/seal')).status, 204);
    assert.equal(await unsealWith(srv.api, keys), false, 'the old shares no longer unseal');
    assert.equal(await unsealWith(srv.api, newKeys.slice(0, 2)), false, 'two new shares are below the threshold');
    assert.equal(await unsealWith(srv.api, newKeys.slice(2, 5)), true);

    await srv.stop();
    srv = await startServer({ dir, initialised: false });
    srv.api = apiClient(srv.url, root);
    assert.equal((await call('GET', 'sys/seal-status')).body.sealed, true);
    assert.equal(await unsealWith(srv.api, keys), false, 'after a restart the old shares still do not unseal');
    assert.equal(await unsealWith(srv.api, [newKeys[4]!, newKeys[0]!, newKeys[1]!]), true);
    seen.push(...keys, ...newKeys);
    keys = newKeys;
  });

  it('with require_verification the old shares stay until a threshold of the new ones comes back', async () => {
    const init = await call('PUT', 'sys/rekey/init', {
      secret_shares: 3,
      secret_threshold: 2,
      require_verification: true,
    });
    assert.equal(init.body.verification_required, true);
    const { nonce } = init.body;
    for (const key of keys.slice(0, 2)) await call('PUT', 'sys/rekey/update', { key, nonce });
    const done = await call('PUT', 'sys/rekey/update', { key: keys[2], nonce });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.complete, true);
    assert.equal(done.body.verification_required, true);
    assert.match(done.body.verification_nonce, /^[0-9a-f-]{36}$/);
    const newKeys = done.body.keys as string[];
    // Nothing is committed yet: the store still has the old configuration.
    assert.equal((await call('GET', 'sys/seal-status')).body.n, 5);
    const again = await call('PUT', 'sys/rekey/update', { key: keys[3], nonce });
    assert.equal(again.status, 400);
    assert.match(again.body.errors[0], /verification must be performed/);
    const status = await call('GET', 'sys/rekey/init');
    assert.equal(status.body.verification_nonce, done.body.verification_nonce);

    let verify = await call('GET', 'sys/rekey/verify');
    assert.deepEqual(verify.body, { nonce: done.body.verification_nonce, started: true, t: 2, n: 3, progress: 0 });
    const wrongNonce = await call('PUT', 'sys/rekey/verify', { key: newKeys[0], nonce: nonce });
    assert.equal(wrongNonce.status, 400);
    assert.match(wrongNonce.body.errors[0], /^incorrect nonce supplied; nonce for this verify operation/);

    // Old shares are not the new ones: verification fails, and starts over under a new nonce.
    let vnonce = done.body.verification_nonce;
    await call('PUT', 'sys/rekey/verify', { key: keys[0], nonce: vnonce });
    const failed = await call('PUT', 'sys/rekey/verify', { key: keys[1], nonce: vnonce });
    assert.equal(failed.status, 400);
    assert.deepEqual(failed.body.errors, ['rekey verification failed; incorrect key shares supplied']);
    verify = await call('GET', 'sys/rekey/verify');
    assert.notEqual(verify.body.nonce, vnonce);
    assert.equal(verify.body.progress, 0);
    // DELETE restarts the verification only, under yet another nonce.
    const restarted = await call('DELETE', 'sys/rekey/verify');
    assert.equal(restarted.status, 200, restarted.text);
    assert.notEqual(restarted.body.nonce, verify.body.nonce);
    vnonce = restarted.body.nonce;
    assert.equal((await call('GET', 'sys/seal-status')).body.n, 5, 'still the old shares');

    const one = await call('PUT', 'sys/rekey/verify', { key: newKeys[1], nonce: vnonce });
    assert.equal(one.body.progress, 1);
    assert.equal(
      (await call('PUT', 'sys/rekey/verify', { key: newKeys[1], nonce: vnonce })).body.errors[0],
      'given key has already been provided during this verify operation',
    );
    const verified = await call('PUT', 'sys/rekey/verify', { key: newKeys[2], nonce: vnonce });
    assert.equal(verified.status, 200, verified.text);
    assert.deepEqual(verified.body, { nonce: vnonce, complete: true });
    assert.equal((await call('GET', 'sys/seal-status')).body.n, 3);
    assert.equal((await call('GET', 'sys/rekey/init')).body.started, false);
    assert.equal((await call('GET', 'sys/rekey/verify')).status, 400);

    await srv.api.call('PUT', 'sys/seal');
    assert.equal(await unsealWith(srv.api, keys.slice(0, 3)), false);
    assert.equal(await unsealWith(srv.api, newKeys.slice(0, 2)), true);
    seen.push(...keys, ...newKeys);
    keys = newKeys;
    const kept = await srv.api.call('GET', 'secret/data/kept');
    assert.equal(kept.body.data.data.value, 'before the rekey');
  });

  it('two last shares racing commit once; the loser is refused, and the winner’s shares are the live ones', async () => {
    const { nonce } = (await call('PUT', 'sys/rekey/init', { secret_shares: 3, secret_threshold: 2 })).body;
    await writeOk(srv.api, 'secret/data/race', { data: { v: 1 } });
    const partial = await call('PUT', 'sys/rekey/update', { key: keys[0], nonce });
    assert.equal(partial.body.progress, 1);
    const [a, b] = await Promise.all([
      call('PUT', 'sys/rekey/update', { key: keys[1], nonce }),
      call('PUT', 'sys/rekey/update', { key: keys[2], nonce }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 400]);
    const winner = a.status === 200 ? a : b;
    await srv.api.call('PUT', 'sys/seal');
    assert.equal(await unsealWith(srv.api, winner.body.keys.slice(0, 2)), true);
    seen.push(...keys, ...winner.body.keys);
    keys = winner.body.keys;
  });

  it('the CLI rekeys with -init, shares with -nonce, and prints the new keys', async () => {
    const init = await runCli(srv.url, '', 'operator', 'rekey', '-init', '-key-shares=4', '-key-threshold=2');
    assert.equal(init.code, 0, init.out);
    const nonce = /Nonce\s+(\S+)/.exec(init.out)?.[1];
    assert.ok(nonce, init.out);
    const status = await runCli(srv.url, '', 'operator', 'rekey', '-status', '-format=json');
    assert.equal(JSON.parse(status.out).n, 4);
    const first = await runCli(srv.url, '', 'operator', 'rekey', `-nonce=${nonce}`, keys[0]!);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /Rekey Progress\s+1\/2/);
    const last = await runCli(srv.url, '', 'operator', 'rekey', `-nonce=${nonce}`, keys[1]!);
    assert.equal(last.code, 0, last.out);
    const printed = [...last.out.matchAll(/^Key \d: (\S+)$/gm)].map((m) => m[1]!);
    assert.equal(printed.length, 4, last.out);
    await srv.api.call('PUT', 'sys/seal');
    assert.equal(await unsealWith(srv.api, printed.slice(2, 4)), true);
    keys = printed.map((k) => Buffer.from(k, 'base64').toString('hex'));

    await runCli(srv.url, '', 'operator', 'rekey', '-init', '-key-shares=3', '-key-threshold=2');
    const cancel = await runCli(srv.url, '', 'operator', 'rekey', '-cancel');
    assert.equal(cancel.code, 0, cancel.out);
    assert.equal((await call('GET', 'sys/rekey/init')).body.started, false);
    seen.push(...keys);
  });

  it('hvac (Python, a client we did not write) rekeys and reads the progress', async () => {
    const script = `
import hvac, json, sys
c = hvac.Client(url=sys.argv[1])
start = c.sys.start_rekey(secret_shares=3, secret_threshold=2)
progress = c.sys.read_rekey_progress()
assert progress["started"] and progress["n"] == 3 and progress["t"] == 2, progress
r = c.sys.rekey_multi(sys.argv[2:], nonce=progress["nonce"])
print(json.dumps(r["keys"]))
`;
    const run = await promisify(execFile)('python3', ['-c', script, srv.url, keys[0]!, keys[1]!], {
      timeout: 60_000,
    }).catch((err: { stderr?: string }) => assert.fail(`hvac is needed (pip install hvac): ${err.stderr}`));
    const newKeys = JSON.parse(run.stdout) as string[];
    assert.equal(newKeys.length, 3);
    await srv.api.call('PUT', 'sys/seal');
    assert.equal(await unsealWith(srv.api, keys.slice(0, 2)), false);
    assert.equal(await unsealWith(srv.api, newKeys.slice(1, 3)), true);
    seen.push(...keys, ...newKeys);
    keys = newKeys;
  });

  it('a commit never undoes a change of the unseal keys made meanwhile (another node, a snapshot restore)', async () => {
    const init = await call('PUT', 'sys/rekey/init', {
      secret_shares: 3,
      secret_threshold: 2,
      require_verification: true,
    });
    const { nonce } = init.body;
    await call('PUT', 'sys/rekey/update', { key: keys[0], nonce });
    const done = await call('PUT', 'sys/rekey/update', { key: keys[1], nonce });
    assert.equal(done.body.complete, true, done.text);
    const pending = done.body.keys as string[];

    // What another node's rekey writes to the shared store while this one waits for its verification.
    const { core } = srv.cofre;
    const elsewhere = await core.wrapRootKeyAnew(1, 1);
    const before = Buffer.from((await core.physical.get('core/root-key'))!);
    await core.replaceWrappedRootKey(elsewhere.stored, 1, 1, before);
    const otherKey = elsewhere.keyShares[0]!.toString('hex');

    const vnonce = done.body.verification_nonce;
    await call('PUT', 'sys/rekey/verify', { key: pending[0], nonce: vnonce });
    const refused = await call('PUT', 'sys/rekey/verify', { key: pending[1], nonce: vnonce });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.body.errors[0], /unseal keys changed while this rekey was in progress/);
    assert.equal((await call('GET', 'sys/seal-status')).body.n, 1, 'the other change stands');
    assert.equal((await call('DELETE', 'sys/rekey/init')).status, 204);

    await srv.api.call('PUT', 'sys/seal');
    assert.equal(await unsealWith(srv.api, pending.slice(0, 2)), false);
    assert.equal(await unsealWith(srv.api, keys.slice(0, 2)), false);
    assert.equal(await unsealWith(srv.api, [otherKey]), true);
    seen.push(...keys, ...pending, otherKey);
    keys = [otherKey];
  });

  it('the audit log holds none of the old or new key shares in clear', () => {
    const log = readFileSync(join(dir, 'audit.log'), 'utf8');
    assert.match(log, /sys\/rekey\/update/);
    assert.match(log, /sys\/rekey\/verify/);
    assert.ok(seen.length >= 15);
    for (const key of seen) {
      assert.equal(log.includes(key), false, 'a key share reached the audit log');
      assert.equal(
        log.includes(Buffer.from(key, 'hex').toString('base64')),
        false,
        'a key share reached the audit log',
      );
    }
  });
});

/** `cofre server --config` on a SQLite file, plain HTTP: a process the test can kill at any moment. */
async function spawnServer(
  dir: string,
  port: number,
): Promise<{ child: ChildProcess; api: Api; exited: Promise<void> }> {
  const config = join(dir, 'cofre.hcl');
  writeFileSync(
    config,
    `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}\n` +
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\nlog_level = "error"\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const api = apiClient(`http://127.0.0.1:${port}`);
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`server exited: ${out}`);
    if (
      await api.call('GET', 'sys/health').then(
        () => true,
        () => false,
      )
    )
      return { child, api, exited };
    if (i > 300) throw new Error(`server did not answer: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a rekey interrupted by SIGKILL', () => {
  it('never leaves a store that neither the old nor the new shares open', async (t) => {
    const dir = tempDir('rekey-crash');
    const port = await freePort();
    let server = await spawnServer(dir, port);
    try {
      const init = await server.api.call('PUT', 'sys/init', { body: { secret_shares: 3, secret_threshold: 2 } });
      assert.equal(init.status, 200, init.text);
      const root = init.body.root_token as string;
      let keys = init.body.keys as string[];
      assert.equal(await unsealWith(server.api, keys.slice(0, 2)), true);
      await writeOk(apiClient(server.api.url, root), 'sys/mounts/kv', { type: 'kv', options: { version: '2' } });
      await writeOk(apiClient(server.api.url, root), 'kv/data/kept', { data: { value: 'survives' } });

      // Each round kills the server at another moment around the commit of the new shares: while the last new
      // share is verified (the commit), or in the middle of the old shares' progress.
      // The share count and threshold change every round, so a commit that wrote the wrapped root key without
      // the matching configuration (or the reverse) would leave a store no set of shares opens.
      const delays = [0, 1, 2, 4, 8, 15, -1];
      let threshold = 2;
      const outcomes: string[] = [];
      for (const [round, delay] of delays.entries()) {
        const next = round % 2 === 0 ? { shares: 4, threshold: 3 } : { shares: 3, threshold: 2 };
        const rekeyInit = await server.api.call('PUT', 'sys/rekey/init', {
          body: { secret_shares: next.shares, secret_threshold: next.threshold, require_verification: true },
        });
        const { nonce } = rekeyInit.body;
        for (const key of keys.slice(0, threshold - 1)) {
          await server.api.call('PUT', 'sys/rekey/update', { body: { key, nonce } });
        }
        let newKeys: string[] = [];
        let verified = false;
        if (delay >= 0) {
          const done = await server.api.call('PUT', 'sys/rekey/update', { body: { key: keys[threshold - 1], nonce } });
          assert.equal(done.body.complete, true, done.text);
          newKeys = done.body.keys;
          const vnonce = done.body.verification_nonce;
          for (const key of newKeys.slice(0, next.threshold - 1)) {
            await server.api.call('PUT', 'sys/rekey/verify', { body: { key, nonce: vnonce } });
          }
          const last = server.api
            .call('PUT', 'sys/rekey/verify', { body: { key: newKeys[next.threshold - 1], nonce: vnonce } })
            .then((res) => (verified = res.status === 200 && res.body.complete === true))
            .catch(() => undefined);
          if (delay > 0) await new Promise((r) => setTimeout(r, delay));
          server.child.kill('SIGKILL');
          await last;
        } else {
          server.child.kill('SIGKILL');
        }
        await server.exited;

        server = await spawnServer(dir, port);
        const oldOpen = await unsealWith(server.api, keys.slice(0, threshold));
        if (oldOpen) await server.api.call('PUT', 'sys/seal', { token: root });
        const newOpen = newKeys.length > 0 && (await unsealWith(server.api, newKeys.slice(0, next.threshold)));
        assert.ok(oldOpen || newOpen, `round ${delay}: neither the old nor the new shares open the store`);
        assert.ok(!(oldOpen && newOpen), `round ${delay}: both sets of shares open the store`);
        if (verified) assert.ok(newOpen, `round ${delay}: verification answered complete, yet the new shares fail`);
        if (!newOpen) assert.equal(await unsealWith(server.api, keys.slice(0, threshold)), true);
        outcomes.push(`${delay} ms: ${newOpen ? 'new' : 'old'} shares${verified ? ' (answered)' : ''}`);
        if (newOpen) [keys, threshold] = [newKeys, next.threshold];
        const kept = await server.api.call('GET', 'kv/data/kept', { token: root });
        assert.equal(kept.body?.data?.data?.value, 'survives', `round ${delay}: ${kept.text}`);
      }
      t.diagnostic(`rekey crash rounds: ${outcomes.join('; ')}`);
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

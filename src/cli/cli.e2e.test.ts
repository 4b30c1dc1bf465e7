/**
 * End to end: starts a dev server through `cofre server --dev` and drives it with the `cofre` CLI, each command a
 * child process, as a user would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cofre-e2e-'));
let server: ChildProcess | undefined;
let serverLog = '';
let address = '';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The environment of a CLI run: the dev server, the root token, a private token helper file, no stray settings. */
function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, COFRE_ADDR: address, COFRE_TOKEN: 'root' };
  env.COFRE_TOKEN_FILE = join(tmp, 'token');
  for (const k of ['VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_FORMAT', 'COFRE_FORMAT', 'VAULT_CACERT', 'COFRE_CACERT']) {
    delete env[k];
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cofre(
  args: string[],
  opts: { input?: string; env?: Record<string, string | undefined> } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: cliEnv(opts.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

async function ok(args: string[], opts?: Parameters<typeof cofre>[1]): Promise<string> {
  const r = await cofre(args, opts);
  assert.equal(r.code, 0, `cofre ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function waitForHealth(deadline: number): Promise<void> {
  for (;;) {
    try {
      const res = await fetch(`${address}/v1/sys/health`);
      await res.text();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server not healthy after 20 s; its output:\n${serverLog}`);
    if (server?.exitCode !== null) throw new Error(`server exited (${server?.exitCode}); its output:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  const port = await freePort();
  address = `http://127.0.0.1:${port}`;
  const args = ['server', '--dev', '--dev-listen-address', `127.0.0.1:${port}`, '--dev-root-token-id', 'root'];
  server = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '--data-dir', join(tmp, 'data')], {
    cwd: ROOT,
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (c: Buffer) => (serverLog += c.toString()));
  server.stderr?.on('data', (c: Buffer) => (serverLog += c.toString()));
  await waitForHealth(Date.now() + 20_000);
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server?.once('exit', resolve));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('cofre CLI against a dev server', { timeout: 180_000 }, () => {
  it('status', async () => {
    assert.match(await ok(['status']), /^Sealed +false$/m);
    const json = JSON.parse(await ok(['status', '-format=json']));
    assert.equal(json.sealed, false);
    assert.equal(json.initialized, true);
  });

  it('kv put / get / list / delete on secret/', async () => {
    assert.match(await ok(['kv', 'put', 'secret/e2e/app', 'user=admin', 'pass=s3cret']), /^version +1$/m);
    assert.equal(await ok(['kv', 'get', '-field=pass', 'secret/e2e/app']), 's3cret');
    const got = JSON.parse(await ok(['kv', 'get', '-format=json', 'secret/e2e/app']));
    assert.deepEqual(got.data.data, { user: 'admin', pass: 's3cret' });
    assert.match(await ok(['kv', 'get', '-mount=secret', 'e2e/app']), /^user +admin$/m);
    assert.match(await ok(['kv', 'list', 'secret/']), /^e2e\/$/m);
    assert.deepEqual(JSON.parse(await ok(['kv', 'list', '-format=json', 'secret/e2e'])), ['app']);
    await ok(['kv', 'delete', 'secret/e2e/app']);
    const gone = await cofre(['kv', 'get', '-field=pass', 'secret/e2e/app']);
    assert.equal(gone.code, 2);
  });

  it('policy write (stdin) / read / list', async () => {
    const rules = 'path "secret/data/e2e/*" {\n  capabilities = ["read"]\n}\n';
    assert.match(
      await ok(['policy', 'write', 'e2e-read', '-'], { input: rules }),
      /Success! Uploaded policy: e2e-read/,
    );
    assert.match(await ok(['policy', 'read', 'e2e-read']), /capabilities = \["read"\]/);
    assert.match(await ok(['policy', 'list']), /^e2e-read$/m);
    assert.ok(JSON.parse(await ok(['policy', 'list', '-format=json'])).includes('e2e-read'));
  });

  it('token create -policy / lookup / revoke', async () => {
    const created = JSON.parse(await ok(['token', 'create', '-policy=e2e-read', '-ttl=1h', '-format=json']));
    const token: string = created.auth.client_token;
    assert.ok(token);
    assert.ok(created.auth.policies.includes('e2e-read'));
    const looked = JSON.parse(await ok(['token', 'lookup', '-format=json', token]));
    assert.ok(looked.data.policies.includes('e2e-read'));
    assert.match(await ok(['token', 'lookup', token]), /^policies +\[.*e2e-read.*\]$/m);
    assert.match(await ok(['token', 'revoke', token]), /Success! Revoked token/);
    assert.equal((await cofre(['token', 'lookup', token])).code, 1);
  });

  it('secrets enable -path=kv1 kv / list / disable', async () => {
    assert.match(await ok(['secrets', 'enable', '-path=kv1', 'kv']), /Enabled the kv secrets engine at: kv1\//);
    assert.ok('kv1/' in JSON.parse(await ok(['secrets', 'list', '-format=json'])));
    assert.match(await ok(['secrets', 'list']), /^kv1\/ +kv /m);
    await ok(['kv', 'put', 'kv1/x', 'a=b']);
    assert.equal(await ok(['kv', 'get', '-field=a', 'kv1/x']), 'b');
    await ok(['secrets', 'disable', 'kv1']);
    assert.ok(!('kv1/' in JSON.parse(await ok(['secrets', 'list', '-format=json']))));
  });

  it('login stores the token (mode 0600) for later commands', async () => {
    const env = { COFRE_TOKEN: undefined };
    await ok(['login', 'root'], { env });
    assert.equal(statSync(join(tmp, 'token')).mode & 0o777, 0o600);
    assert.match(await ok(['token', 'lookup'], { env }), /^policies +\[root\]$/m);
  });

  it('errors: usage exit 2, API error exit 1 with the server message', async () => {
    assert.equal((await cofre(['kv', 'get'])).code, 2);
    const denied = await cofre(['kv', 'get', 'secret/x'], { env: { COFRE_TOKEN: 'not-a-token' } });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^Error: /);
  });
});

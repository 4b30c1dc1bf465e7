/**
 * End to end: `cofre server --dev` and the `cofre` CLI as child processes, as a user runs them. The commands
 * themselves are tested in-process against a real server in commands.test.ts; this file checks what only real
 * processes show: `server --dev`, the entry point (main.ts), process exit codes, piped stdin and non-terminal stdout.
 * Each spawn costs about a second (tsx), so it stays small.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cofre-e2e-'));
const tokenFile = join(tmp, 'token');
let server: ChildProcess | undefined;
let serverLog = '';
let address = '';

// test/support.ts has the same helpers, but importing it loads the whole server into this process (seconds of tsx).
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
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    COFRE_ADDR: address,
    COFRE_TOKEN: 'root',
    COFRE_TOKEN_FILE: tokenFile,
  };
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
    await new Promise((r) => setTimeout(r, 100));
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
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer); // a pending timer would hold the test process open for its full 5 s
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('cofre CLI processes against a dev server', { timeout: 120_000 }, () => {
  it('piped stdin and stdout; exit codes 0, 1 (API error) and 2 (not found)', async () => {
    const putThenGet = async (): Promise<[string, string]> => {
      const put = await ok(['kv', 'put', 'secret/e2e/app', '-'], { input: '{"user":"admin","pass":"s3cret"}' });
      return [put, await ok(['kv', 'get', '-field=pass', 'secret/e2e/app'])];
    };
    const [[put, got], denied, missing] = await Promise.all([
      putThenGet(),
      cofre(['kv', 'get', 'secret/e2e/app'], { env: { COFRE_TOKEN: 'not-a-token' } }),
      cofre(['kv', 'get', 'secret/e2e/none']),
    ]);
    assert.match(put, /^version +1$/m);
    assert.equal(got, 's3cret', 'a raw -field value, no trailing newline when stdout is a pipe');
    assert.equal(denied.code, 1);
    assert.equal(denied.stdout, '');
    assert.match(denied.stderr, /^Error: .*\n[\s\S]*Code: 403\. Errors:\n\n\* permission denied/);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, 'No value found at secret/data/e2e/none\n');
  });
});

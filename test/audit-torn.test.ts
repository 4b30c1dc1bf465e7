import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { apiClient, freePort, spawnDevServer, startServer, tempDir } from './support.js';

function verify(...files: string[]): { status: number | null; out: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'verify', ...files], {
    encoding: 'utf8',
  });
  return { status: res.status, out: res.stdout + res.stderr };
}

/** Sets the soft RLIMIT_FSIZE of a running process: writes past `bytes` into any file fail (EFBIG). */
function fileSizeLimit(pid: number, bytes: number | 'unlimited'): string | undefined {
  const res = spawnSync('prlimit', ['--pid', String(pid), `--fsize=${bytes}:`], { encoding: 'utf8' });
  return res.status === 0 ? undefined : `prlimit failed: ${res.error?.message ?? res.stderr}`;
}

describe('audit lines are written whole or not at all', () => {
  it('a line cut short by a file size limit is cut off, the request refused, and the log stays verifiable', async () => {
    // A missing tool fails the test, never skips it: util-linux (prlimit) is on every Debian machine.
    const probe = spawnSync('prlimit', ['--pid', String(process.pid), '--fsize'], { encoding: 'utf8' });
    assert.equal(probe.status, 0, `prlimit (util-linux) is needed to limit the server's file size: ${probe.stderr}`);
    const dir = tempDir('audit-torn');
    const server = await spawnDevServer(join(dir, 'data'), await freePort());
    const api = apiClient(server.url, 'root');
    try {
      const log = join(dir, 'audit.log');
      const enabled = await api.call('PUT', 'sys/audit/file', {
        body: { type: 'file', options: { file_path: log } },
      });
      assert.equal(enabled.status, 204, enabled.text);
      assert.equal((await api.call('POST', 'secret/data/x', { body: { data: { v: 'value' } } })).status, 200);
      // The limit holds for every file of the process: make the log much bigger than the store's files, with
      // key names (which the log keeps in clear) of a request that stores nothing.
      const pad: Record<string, string> = {};
      for (let i = 0; i < 4000; i++) pad[`${i}-${'k'.repeat(250)}`] = 'v';
      for (let i = 0; i < 2; i++) {
        assert.equal((await api.call('POST', 'sys/audit-hash/file', { body: { input: 'x', pad } })).status, 200);
      }
      const before = statSync(log).size;
      const storeFiles = readdirSync(join(dir, 'data')).map((f) => statSync(join(dir, 'data', f)).size);
      assert.ok(Math.max(...storeFiles) < before / 2, `store files ${storeFiles} are not much smaller than the log`);

      // Room for the request line of a read, not for its response line.
      const limited = fileSizeLimit(server.child.pid!, before + 1200);
      assert.equal(limited, undefined, limited);
      const refused = await api.call('GET', 'secret/data/x');
      assert.equal(refused.status, 500, `answered ${refused.status} with its response line torn`);
      assert.equal(refused.text.includes('value'), false);
      const text = readFileSync(log, 'utf8');
      assert.ok(text.endsWith('\n'), 'the log ends in a torn line');
      const last = JSON.parse(text.slice(text.lastIndexOf('\n', text.length - 2) + 1));
      assert.equal(last.type, 'request', 'the request line, which fitted, is the last one');
      assert.equal(verify(log).status, 0, verify(log).out);

      // With room again, the device writes again and the chain goes on from the last whole line.
      assert.equal(fileSizeLimit(server.child.pid!, 'unlimited'), undefined);
      const read = await api.call('GET', 'secret/data/x');
      assert.equal(read.status, 200, read.text);
      const again = verify(log);
      assert.equal(again.status, 0, again.out);
    } finally {
      server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a torn last line left by a crash is cut off when the device opens, and the chain goes on after a long line', async () => {
    const srv = await startServer();
    try {
      const log = join(srv.dir, 'audit.log');
      const res = await srv.api.call('PUT', 'sys/audit/file', { body: { type: 'file', options: { file_path: log } } });
      assert.equal(res.status, 204, res.text);
      // The last whole line is longer than any fixed tail a reader might look at (here about 1.5 MB).
      const pad = Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`${i}-${'k'.repeat(80)}`, 'v']));
      assert.equal((await srv.api.call('POST', 'sys/audit-hash/file', { body: { input: 'x', pad } })).status, 200);
      await srv.api.call('PUT', 'sys/seal');
      const whole = statSync(log).size;
      appendFileSync(log, '{"time":"2026-01-01T00:00:00.000Z","type":"request","auth":{"client_tok');
      for (const key of srv.keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
      assert.equal(statSync(log).size, whole, 'the torn tail is cut off at unseal');
      assert.equal((await srv.api.call('GET', 'sys/audit')).status, 200);
      const result = verify(log);
      assert.equal(result.status, 0, result.out);
    } finally {
      await srv.stop();
    }
  });
});

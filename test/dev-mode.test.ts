// `cofre server --dev` as Vault's -dev behaves: a store in memory by default (gone when the server stops), kept in
// --data-dir when one is given, the store in use named in the banner, and requests logged.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { apiClient, freePort, tempDir } from './support.js';

interface Dev {
  child: ChildProcess;
  url: string;
  out(): string;
  stop(): Promise<void>;
}

async function startDev(args: string[]): Promise<Dev> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'server', '--dev', '--dev-listen-address', `127.0.0.1:${port}`, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!/Root Token: /.test(out)) {
    assert.equal(child.exitCode, null, `dev server exited: ${out}`);
    assert.ok(Date.now() < deadline, `no dev server after 30 s: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    out: () => out,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const rootToken = (dev: Dev) => /Root Token: (\S+)/.exec(dev.out())![1]!;

describe('dev mode', () => {
  const dir = tempDir('dev-mode');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps its store in memory by default, says so, and logs requests', async () => {
    const first = await startDev([]);
    assert.match(first.out(), /Storage: +in memory/);
    const api = apiClient(first.url, rootToken(first));
    const put = await api.call('POST', 'secret/data/app/db', { body: { data: { password: 'gone-after-stop' } } });
    assert.equal(put.status, 200, put.text);
    await new Promise((r) => setTimeout(r, 200));
    assert.match(first.out(), /\[INFO\] +request: method=POST path=\/v1\/secret\/data\/app\/db status=200/);
    assert.doesNotMatch(first.out(), /gone-after-stop/, 'a logged request shows no value');
    await first.stop();

    const second = await startDev([]);
    try {
      const read = await apiClient(second.url, rootToken(second)).call('GET', 'secret/data/app/db');
      assert.equal(read.status, 404, 'a new dev server starts empty');
    } finally {
      await second.stop();
    }
  });

  it('keeps its store in --data-dir across restarts, and says so', async () => {
    const data = join(dir, 'data');
    const first = await startDev(['--data-dir', data, '--dev-root-token-id', 'root']);
    assert.match(first.out(), new RegExp(`Storage: +SQLite in ${data}`));
    const api = apiClient(first.url, 'root');
    assert.equal((await api.call('POST', 'secret/data/app/db', { body: { data: { v: 'kept' } } })).status, 200);
    await first.stop();
    const second = await startDev(['--data-dir', data]);
    try {
      const read = await apiClient(second.url, 'root').call('GET', 'secret/data/app/db');
      assert.equal(read.body.data.data.v, 'kept');
    } finally {
      await second.stop();
    }
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCofre, devDefaultMounts } from '../src/app.js';
import { loadServerConfig } from '../src/cli/server-config.js';
import {
  apiClient,
  freePort,
  spawnDevServer,
  startServer,
  tempDir,
  type Api,
  type InProcessServer,
} from './support.js';

function verify(...args: string[]): { status: number | null; out: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'verify', ...args], {
    encoding: 'utf8',
  });
  return { status: res.status, out: res.stdout + res.stderr };
}

const enable = (api: Api, name: string, options: Record<string, string>) =>
  api.call('PUT', `sys/audit/${name}`, { body: { type: 'file', options } });

describe('audit file devices cannot be turned into a weapon', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  it('refuses executable, set-id, world-writable and malformed modes', async () => {
    for (const mode of ['0755', '0700', '0744', '0610', '4600', '2600', '1600', '0666', '0602', '0400', 'rw', '9']) {
      const file = join(srv.dir, `mode-${mode}.sh`);
      const res = await enable(srv.api, `mode-${mode}`, { file_path: file, mode });
      assert.equal(res.status, 400, `mode ${mode} accepted`);
      assert.match(res.body.errors[0], /mode/);
      assert.equal(existsSync(file), false, `mode ${mode} left a file behind`);
    }
    const res = await enable(srv.api, 'mode-0640', { file_path: join(srv.dir, 'ok.log'), mode: '0640' });
    assert.equal(res.status, 204, res.text);
    assert.equal(statSync(join(srv.dir, 'ok.log')).mode & 0o7777, 0o640);
    assert.equal((await srv.api.call('DELETE', 'sys/audit/mode-0640')).status, 204);
  });

  it('a logged path such as $(cmd) cannot end up in an executable script', async () => {
    const script = join(srv.dir, 'evil.sh');
    assert.equal((await enable(srv.api, 'evil', { file_path: script, mode: '0755' })).status, 400);
    await srv.api.call('POST', 'secret/data/$(touch /tmp/pwned)', { token: '' });
    assert.equal(existsSync(script), false);
  });

  it('refuses to append to an existing file that is not a Cofre audit log', async () => {
    const profile = join(srv.dir, '.bashrc');
    const original = 'export PATH=/usr/bin:/bin\n';
    writeFileSync(profile, original, { mode: 0o644 });
    const res = await enable(srv.api, 'profile', { file_path: profile });
    assert.equal(res.status, 400);
    assert.match(res.body.errors[0], /not a Cofre audit log/);
    assert.equal(readFileSync(profile, 'utf8'), original);
    assert.equal(statSync(profile).mode & 0o7777, 0o644, 'the mode of a refused file was changed');
    // One line of JSON is not enough either, nor a file with no newline at all.
    for (const [name, text] of [
      ['json.log', '{"a":1}\n'],
      ['bare', 'echo hi'],
    ]) {
      writeFileSync(join(srv.dir, name!), text!);
      assert.equal((await enable(srv.api, name!.replace('.', '-'), { file_path: join(srv.dir, name!) })).status, 400);
      assert.equal(readFileSync(join(srv.dir, name!), 'utf8'), text);
    }
  });

  it('refuses a symbolic link, a directory or a device as the file', async () => {
    const profile = join(srv.dir, 'profile');
    writeFileSync(profile, 'echo hi\n');
    symlinkSync(profile, join(srv.dir, 'link.log'));
    assert.equal((await enable(srv.api, 'link', { file_path: join(srv.dir, 'link.log') })).status, 400);
    assert.equal(readFileSync(profile, 'utf8'), 'echo hi\n');
    mkdirSync(join(srv.dir, 'dir.log'));
    assert.equal((await enable(srv.api, 'dir', { file_path: join(srv.dir, 'dir.log') })).status, 400);
    assert.equal((await enable(srv.api, 'null', { file_path: '/dev/null' })).status, 400);
  });

  it('appends to an existing Cofre audit log, and to an empty file', async () => {
    const log = join(srv.dir, 'reused.log');
    assert.equal((await enable(srv.api, 'first', { file_path: log })).status, 204);
    assert.equal((await srv.api.call('DELETE', 'sys/audit/first')).status, 204);
    assert.equal((await enable(srv.api, 'second', { file_path: log })).status, 204);
    assert.equal((await srv.api.call('DELETE', 'sys/audit/second')).status, 204);
    writeFileSync(join(srv.dir, 'empty.log'), '');
    assert.equal((await enable(srv.api, 'empty', { file_path: join(srv.dir, 'empty.log') })).status, 204);
    assert.equal((await srv.api.call('DELETE', 'sys/audit/empty')).status, 204);
  });
});

describe('two audit devices on one file', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  it('write one hash chain that `cofre audit verify` accepts, through a link too; closing one leaves the other on it', async () => {
    const file = join(srv.dir, 'shared.log');
    assert.equal((await enable(srv.api, 'one', { file_path: file })).status, 204);
    // The same file named another way: the devices meet on its resolved path.
    mkdirSync(join(srv.dir, 'via'));
    symlinkSync(srv.dir, join(srv.dir, 'via', 'link'));
    assert.equal((await enable(srv.api, 'two', { file_path: join(srv.dir, 'via', 'link', 'shared.log') })).status, 204);
    for (let i = 0; i < 5; i++) await srv.api.call('GET', 'sys/mounts');
    const both = verify(file);
    assert.equal(both.status, 0, both.out);
    assert.equal((await srv.api.call('DELETE', 'sys/audit/one')).status, 204);
    for (let i = 0; i < 3; i++) await srv.api.call('GET', 'sys/mounts');
    const after = verify(file);
    assert.equal(after.status, 0, after.out);
    // Every request and response of the loop above is there twice while both devices were on: once per device.
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.ok(lines.length >= 2 * 2 * 5, `${lines.length} lines`);
  });
});

describe('audit_file_path_prefix', () => {
  it('is read from the server configuration, HCL and JSON', () => {
    const dir = tempDir('prefix-config');
    try {
      const base = `storage "sqlite" {\n  path = "${dir}/cofre.db"\n}\nlistener "tcp" {\n  tls_disable = true\n}\n`;
      writeFileSync(join(dir, 'a.hcl'), `${base}audit_file_path_prefix = "/var/log/cofre"\n`);
      assert.equal(loadServerConfig(join(dir, 'a.hcl')).auditFilePathPrefix, '/var/log/cofre');
      writeFileSync(
        join(dir, 'a.json'),
        JSON.stringify({
          storage: { sqlite: { path: `${dir}/cofre.db` } },
          listener: { tcp: { tls_disable: true } },
          audit_file_path_prefix: '/srv/audit',
        }),
      );
      assert.equal(loadServerConfig(join(dir, 'a.json')).auditFilePathPrefix, '/srv/audit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('confines file_path, through .. and symbolic links too', async () => {
    const dir = tempDir('prefix');
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    mkdirSync(join(dir, 'outside'));
    symlinkSync(join(dir, 'outside'), join(logs, 'escape'));
    const cofre = await createCofre({
      storage: { type: 'sqlite', path: join(dir, 'cofre.db') },
      logLevel: 'error',
      defaultMounts: devDefaultMounts(),
      auditFilePathPrefix: logs,
    });
    try {
      await cofre.http.listen({ host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${(cofre.http.server.address() as { port: number }).port}`;
      const init = await apiClient(url).call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
      await apiClient(url).call('PUT', 'sys/unseal', { body: { key: init.body.keys[0] } });
      const api = apiClient(url, init.body.root_token);
      for (const path of [
        join(dir, 'outside', 'a.log'),
        `${logs}/../outside/b.log`,
        join(logs, 'escape', 'c.log'),
        join(dir, 'logs-sibling.log'),
        logs,
      ]) {
        const res = await enable(api, 'out', { file_path: path });
        assert.equal(res.status, 400, `${path} accepted`);
      }
      assert.deepEqual(
        spawnSync('find', [join(dir, 'outside'), '-type', 'f'], { encoding: 'utf8' }).stdout.trim(),
        '',
        'a file was created outside the prefix',
      );
      const ok = await enable(api, 'in', { file_path: join(logs, 'audit.log') });
      assert.equal(ok.status, 204, ok.text);
      assert.ok(readFileSync(join(logs, 'audit.log'), 'utf8').includes('sys/audit/in'));
    } finally {
      await cofre.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('audit log rotation', () => {
  let srv: InProcessServer;
  let log = '';
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.code === 'COFRE_AUDIT') warnings.push(w.message);
  };
  before(async () => {
    process.on('warning', onWarning);
    srv = await startServer();
    log = join(srv.dir, 'audit.log');
    assert.equal((await enable(srv.api, 'file', { file_path: log })).status, 204);
  });
  after(async () => {
    process.off('warning', onWarning);
    await srv.stop();
  });

  it('a file renamed away is noticed and a new one opened; the chain goes on across the two', async () => {
    await srv.api.call('GET', 'sys/audit');
    renameSync(log, `${log}.1`);
    await new Promise((r) => setTimeout(r, 1100)); // the path is looked up once a second
    assert.equal((await srv.api.call('GET', 'secret/data/after-rename')).status, 404);
    assert.ok(readFileSync(log, 'utf8').includes('secret/data/after-rename'), 'nothing written to the new file');
    assert.equal(readFileSync(`${log}.1`, 'utf8').includes('secret/data/after-rename'), false);
    assert.equal(verify(`${log}.1`).status, 0);
    assert.equal(verify('--continued', log).status, 0);
    const both = verify(`${log}.1`, log);
    assert.equal(both.status, 0, both.out);
    assert.match(both.out, /in 2 files/);
    // Out of order, the two files do not make one chain.
    assert.equal(verify(log, `${log}.1`).status, 1);
  });

  it('a deleted file is noticed at the next write: nothing goes into the deleted inode', async () => {
    rmSync(log);
    assert.equal((await srv.api.call('GET', 'secret/data/after-delete')).status, 404);
    assert.ok(readFileSync(log, 'utf8').includes('secret/data/after-delete'));
    assert.ok(
      warnings.some((w) => w.includes('was deleted')),
      warnings.join('\n'),
    );
  });

  it('a file that cannot be opened again is reported and, as the only device, refuses requests', async () => {
    const other = await startServer();
    try {
      const dir = join(other.dir, 'logs');
      mkdirSync(dir);
      const file = join(dir, 'audit.log');
      assert.equal((await enable(other.api, 'file', { file_path: file })).status, 204);
      rmSync(dir, { recursive: true });
      const res = await other.api.call('GET', 'sys/audit');
      assert.equal(res.status, 500);
      assert.ok(
        warnings.some((w) => w.includes(file) && w.includes('cannot be written')),
        warnings.join('\n'),
      );
      mkdirSync(dir);
      assert.equal((await other.api.call('GET', 'sys/audit')).status, 200, 'the device recovers');
    } finally {
      await other.stop();
    }
  });

  it('SIGHUP reopens the file at once (cofre server)', async () => {
    const dir = tempDir('audit-hup');
    const server = await spawnDevServer(join(dir, 'data'), await freePort());
    try {
      const api = apiClient(server.url, 'root');
      const file = join(dir, 'audit.log');
      assert.equal((await enable(api, 'file', { file_path: file })).status, 204);
      renameSync(file, `${file}.1`);
      server.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await api.call('GET', 'secret/data/after-hup')).status, 404);
      assert.ok(existsSync(file), `no new file after SIGHUP: ${server.output()}`);
      assert.ok(readFileSync(file, 'utf8').includes('secret/data/after-hup'));
      assert.equal(verify(`${file}.1`, file).status, 0);
    } finally {
      server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

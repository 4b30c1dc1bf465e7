import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadServerConfig } from '../src/cli/server-config.js';
import { freePort, selfSignedCert, tempDir } from './support.js';

function httpsCall(url: string, ca: Buffer, method: string, path: string, body?: unknown, token?: string) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const headers: Record<string, string> = token ? { 'x-vault-token': token } : {};
    const req = request(`${url}/v1/${path}`, { method, ca, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Production mode: `cofre server --config` with an HCL file, a TLS listener, starting sealed. */
describe('server from a config file with TLS', () => {
  it('serves the API over TLS from an HCL config and starts sealed', async () => {
    const dir = tempDir('config');
    try {
      const { key, cert } = selfSignedCert(dir);
      const port = await freePort();
      const config = join(dir, 'cofre.hcl');
      writeFileSync(
        config,
        `storage "sqlite" {\n  path = "${join(dir, 'data', 'cofre.db')}"\n}\n` +
          `listener "tcp" {\n  address       = "127.0.0.1:${port}"\n  tls_cert_file = "${cert}"\n  tls_key_file  = "${key}"\n}\n` +
          `api_addr  = "https://127.0.0.1:${port}"\nlog_level = "warn"\n`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      try {
        const ca = readFileSync(cert);
        const url = `https://127.0.0.1:${port}`;
        let health: { status: number; body: Record<string, unknown> } | undefined;
        for (let i = 0; i < 100 && !health; i++) {
          health = await httpsCall(url, ca, 'GET', 'sys/health').catch(() => undefined);
          if (!health) await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(health, `server did not come up: ${out}`);
        assert.equal(health.status, 501, 'a new production server is uninitialised');
        const init = await httpsCall(url, ca, 'PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 });
        assert.equal(init.status, 200);
        const keys = init.body.keys as string[];
        assert.equal((await httpsCall(url, ca, 'GET', 'sys/health')).status, 503);
        await httpsCall(url, ca, 'PUT', 'sys/unseal', { key: keys[0] });
        assert.equal((await httpsCall(url, ca, 'GET', 'sys/health')).status, 200);
        // Production mode mounts nothing by default.
        const mounts = await httpsCall(url, ca, 'GET', 'sys/mounts', undefined, init.body.root_token as string);
        assert.equal((mounts.body.data as Record<string, unknown>)['secret/'], undefined);
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a config without TLS files unless tls_disable is set, with a clear message', () => {
    const dir = tempDir('badconfig');
    try {
      const config = join(dir, 'bad.hcl');
      writeFileSync(
        config,
        `storage "sqlite" {\n  path = "${dir}/x.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n}\n`,
      );
      const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config', config], {
        encoding: 'utf8',
      });
      assert.equal(res.status, 1);
      assert.match(res.stderr, /tls_cert_file and tls_key_file, or tls_disable = true/);
      writeFileSync(config, `storage "postgres" {\n}\n`);
      const pg = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config', config], {
        encoding: 'utf8',
      });
      assert.match(pg.stderr, /unsupported storage "postgres"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads workers, a whole number from 1 to 64', () => {
    const dir = tempDir('workers-config');
    try {
      const file = join(dir, 'w.hcl');
      const base = `storage "sqlite" {\n  path = "${join(dir, 'c.db')}"\n}\nlistener "tcp" {\n  tls_disable = true\n}\n`;
      writeFileSync(file, base);
      assert.equal(loadServerConfig(file).workers, undefined);
      writeFileSync(file, `${base}workers = 2\n`);
      assert.equal(loadServerConfig(file).workers, 2);
      for (const bad of ['0', '65', '"two"', '1.5']) {
        writeFileSync(file, `${base}workers = ${bad}\n`);
        assert.throws(() => loadServerConfig(file), /workers must be a whole number from 1 to 64/, bad);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads browser_hosts: host names (or "*"), with the one that is not named', () => {
    const dir = tempDir('browser-hosts-config');
    try {
      const file = join(dir, 'b.hcl');
      const base = `storage "sqlite" {\n  path = "${join(dir, 'c.db')}"\n}\nlistener "tcp" {\n  tls_disable = true\n}\n`;
      writeFileSync(file, base);
      assert.deepEqual(loadServerConfig(file).browserHosts, []);
      writeFileSync(file, `${base}browser_hosts = ["cofre.example.com", "10.0.0.5"]\n`);
      assert.deepEqual(loadServerConfig(file).browserHosts, ['cofre.example.com', '10.0.0.5']);
      writeFileSync(file, `${base}browser_hosts = "cofre.example.com"\n`);
      assert.deepEqual(loadServerConfig(file).browserHosts, ['cofre.example.com']);
      writeFileSync(
        join(dir, 'b.json'),
        JSON.stringify({
          storage: { sqlite: { path: join(dir, 'c.db') } },
          listener: { tcp: { tls_disable: true } },
          browser_hosts: ['*'],
        }),
      );
      assert.deepEqual(loadServerConfig(join(dir, 'b.json')).browserHosts, ['*']);
      for (const bad of ['"https://cofre.example.com"', '["cofre.example.com:8200"]', '["ok.example", "a/b"]']) {
        writeFileSync(file, `${base}browser_hosts = ${bad}\n`);
        assert.throws(
          () => loadServerConfig(file),
          /browser_hosts: ".+" is not a host name \(give the name alone/,
          bad,
        );
      }
      for (const bad of ['3', '[1, 2]', 'true']) {
        writeFileSync(file, `${base}browser_hosts = ${bad}\n`);
        assert.throws(() => loadServerConfig(file), /browser_hosts must be a list of host names/, bad);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads storage "postgresql": connection_url, table and max_connections, or the URL from the environment', () => {
    const dir = tempDir('pgconfig');
    const saved = process.env.COFRE_PG_CONNECTION_URL;
    try {
      const file = join(dir, 'pg.hcl');
      const listener = 'listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n';
      writeFileSync(
        file,
        `storage "postgresql" {\n  connection_url = "postgres://cofre@db:5432/cofre"\n  table = "vault_kv"\n  max_connections = 8\n}\n${listener}`,
      );
      assert.deepEqual(loadServerConfig(file).storage, {
        type: 'postgresql',
        connectionUrl: 'postgres://cofre@db:5432/cofre',
        table: 'vault_kv',
        maxConnections: 8,
      });
      writeFileSync(file, `storage "postgresql" {\n}\n${listener}`);
      delete process.env.COFRE_PG_CONNECTION_URL;
      assert.throws(() => loadServerConfig(file), /needs connection_url \(or COFRE_PG_CONNECTION_URL/);
      process.env.COFRE_PG_CONNECTION_URL = 'postgres://from-env/cofre';
      assert.deepEqual(loadServerConfig(file).storage, {
        type: 'postgresql',
        connectionUrl: 'postgres://from-env/cofre',
      });
      writeFileSync(file, `storage "postgresql" {\n  max_connections = "many"\n}\n${listener}`);
      assert.throws(() => loadServerConfig(file), /max_connections must be a positive integer/);
    } finally {
      if (saved === undefined) delete process.env.COFRE_PG_CONNECTION_URL;
      else process.env.COFRE_PG_CONNECTION_URL = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { apiClient, freePort, spawnDevServer, tempDir } from './support.js';

/**
 * Fuzzes every operation of the OpenAPI document with schemathesis (a tool we did not write): whatever it sends,
 * the server must never answer 5xx. Sealing and revoking the fuzzer's own token are left out so the rest keeps
 * being exercised with a valid token.
 */
describe('OpenAPI document under fuzzing', () => {
  it('schemathesis finds no server error', async () => {
    const probe = spawnSync('schemathesis', ['--version'], { encoding: 'utf8' });
    assert.equal(probe.status, 0, 'schemathesis is needed: pip install schemathesis (.ci/run installs it)');
    const dir = tempDir('fuzz');
    const server = await spawnDevServer(dir, await freePort(), 'fuzz-root');
    try {
      const api = apiClient(server.url, 'fuzz-root');
      // Every mount type: the database engine's paths too (without a database behind it, its connections can
      // only fail cleanly), KV version 1 beside dev mode's version 2, and every auth method (Kubernetes with no
      // cluster, JWT with no keys: test/auth-jwt-fuzz.test.ts fuzzes a configured one).
      assert.equal((await api.call('POST', 'sys/mounts/database', { body: { type: 'database' } })).status, 204);
      const kv1 = await api.call('POST', 'sys/mounts/kv1', { body: { type: 'kv', options: { version: '1' } } });
      assert.equal(kv1.status, 204, kv1.text);
      for (const type of ['kubernetes', 'approle', 'userpass', 'jwt']) {
        assert.equal((await api.call('POST', `sys/auth/${type}`, { body: { type } })).status, 204, type);
      }
      // With an audit device on, as in production: every fuzzed request and response goes through it.
      const audit = await api.call('PUT', 'sys/audit/fuzz', {
        body: { type: 'file', options: { file_path: join(dir, 'audit.log') } },
      });
      assert.equal(audit.status, 204, audit.text);
      const spec = await api.call('GET', 'sys/internal/specs/openapi');
      assert.equal(spec.status, 200);
      assert.ok(Object.keys(spec.body.paths).length > 40);
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(spec.body));
      const run = spawnSync(
        'schemathesis',
        [
          'run',
          file,
          '--url',
          `${server.url}/v1`,
          '-H',
          'X-Vault-Token: fuzz-root',
          '--checks',
          'not_a_server_error',
          '--max-examples',
          '15',
          '--seed',
          '1',
          '--exclude-path-regex',
          // Sealing, revoking its own token or disabling the audit device would stop the rest being exercised.
          '^/sys/seal$|^/auth/token/revoke-self$|^/sys/audit/',
        ],
        { encoding: 'utf8', timeout: 300_000, cwd: dir, env: { ...process.env, NO_COLOR: '1' } },
      );
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /\d+ generated, \d+ passed/);
      assert.match(server.output(), /Root Token/);
    } finally {
      server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fuzzWithSchemathesis } from './schemathesis.js';
import { apiClient, freePort, spawnDevServer, tempDir } from './support.js';

/**
 * Fuzzes every operation of the OpenAPI document with schemathesis (a tool we did not write): whatever it sends,
 * the server must never answer 5xx. Sealing and revoking the fuzzer's own token are left out so the rest keeps
 * being exercised with a valid token.
 */
describe('OpenAPI document under fuzzing', () => {
  it('schemathesis finds no server error', async () => {
    const dir = tempDir('fuzz');
    const server = await spawnDevServer(dir, await freePort(), 'fuzz-root');
    try {
      const api = apiClient(server.url, 'fuzz-root');
      // Every mount type: transit, the database engine's paths too (without a database behind it, its connections can
      // only fail cleanly), KV version 1 beside dev mode's version 2, and every auth method (Kubernetes with no
      // cluster, JWT with no keys: test/auth-jwt-fuzz.test.ts fuzzes a configured one).
      assert.equal((await api.call('POST', 'sys/mounts/database', { body: { type: 'database' } })).status, 204);
      assert.equal((await api.call('POST', 'sys/mounts/transit', { body: { type: 'transit' } })).status, 204);
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
      await fuzzWithSchemathesis(api, 'fuzz-root', dir, {
        maxExamples: 15,
        // Sealing, revoking its own token or disabling the audit device would stop the rest being exercised.
        filter: ['--exclude-path-regex', '^/sys/seal$|^/auth/token/revoke-self$|^/sys/audit/'],
      });
      assert.match(server.output(), /Root Token/);
    } finally {
      server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { fuzzWithSchemathesis } from './schemathesis.js';
import { apiClient, freePort, spawnDevServer, tempDir } from './support.js';

/**
 * The jwt and oidc mounts' paths under schemathesis (a fuzzer we did not write), configured against a live JWKS
 * so that logins reach the verifier: whatever it sends, the server never answers 5xx.
 */
describe('JWT auth paths under fuzzing', () => {
  it('schemathesis finds no server error on auth/jwt and auth/oidc', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] });
    const idp = createServer((_req, res) => res.end(jwks));
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks`;
    const dir = tempDir('jwt-fuzz');
    const server = await spawnDevServer(dir, await freePort(), 'fuzz-root');
    try {
      const api = apiClient(server.url, 'fuzz-root');
      for (const type of ['jwt', 'oidc']) {
        assert.equal((await api.call('POST', `sys/auth/${type}`, { body: { type } })).status, 204);
        const config = await api.call('POST', `auth/${type}/config`, { body: { jwks_url: jwksUrl } });
        assert.equal(config.status, 204, config.text);
        const role = await api.call('POST', `auth/${type}/role/app`, {
          body: { role_type: 'jwt', user_claim: 'sub', bound_audiences: 'cofre', bound_claims: { a: 'b' } },
        });
        assert.equal(role.status, 204, role.text);
      }
      const spec = await api.call('GET', 'sys/internal/specs/openapi');
      assert.ok(Object.keys(spec.body.paths).some((p) => p.startsWith('/auth/jwt/')));
      await fuzzWithSchemathesis(api, 'fuzz-root', dir, {
        maxExamples: 40,
        filter: ['--include-path-regex', '^/auth/(jwt|oidc)/'],
      });
    } finally {
      server.child.kill('SIGKILL');
      idp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

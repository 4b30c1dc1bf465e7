/**
 * Paths outside the API (/v1/) answer an error that says where the API is, not a 404 with an empty error list:
 * "/" and "/ui/" (the web UI, on in dev mode or with `ui = true`; test/ui-static.test.ts covers it on) and anything else a browser or a mistyped
 * VAULT_ADDR may ask for. Methods outside Vault's set stay 405 (http-methods.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

const UI_OFF =
  'the web UI is off on this server (dev mode, or ui = true in the configuration file, turns it on); ' +
  'the API is under /v1/ (try GET /v1/sys/health)';

describe('answers outside /v1/', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  async function errorsOf(method: string, path: string): Promise<{ status: number; errors: unknown }> {
    const res = await fetch(`${srv.url}${path}`, { method, redirect: 'manual' });
    const text = await res.text();
    return { status: res.status, errors: (JSON.parse(text) as { errors?: unknown }).errors };
  }

  it('"/" and the web UI paths of a server without the UI say how to turn it on and point at /v1/sys/health', async () => {
    for (const path of ['/', '/?with=query', '/ui', '/ui/', '/ui/vault/secrets']) {
      assert.deepEqual(await errorsOf('GET', path), { status: 404, errors: [UI_OFF] }, path);
    }
    // The hint is right: the API answers there.
    assert.equal((await fetch(`${srv.url}/v1/sys/health`)).status, 200);
  });

  it('any other path names the method and path that have no handler, without the query string', async () => {
    assert.deepEqual(await errorsOf('GET', '/elsewhere?token=x'), {
      status: 404,
      errors: ['no handler for GET /elsewhere; the API is under /v1/'],
    });
    assert.deepEqual(await errorsOf('PUT', '/secret/data/app'), {
      status: 404,
      errors: ['no handler for PUT /secret/data/app; the API is under /v1/'],
    });
    assert.deepEqual(await errorsOf('DELETE', '/v1'), {
      status: 404,
      errors: ['no handler for DELETE /v1; the API is under /v1/'],
    });
    const long = `/${'a'.repeat(1000)}`;
    const { errors } = await errorsOf('GET', long);
    assert.deepEqual(errors, [`no handler for GET ${long.slice(0, 256)}...; the API is under /v1/`]);
  });

  it('methods outside the API stay 405 there (HEAD, OPTIONS)', async () => {
    for (const method of ['HEAD', 'OPTIONS']) {
      const res = await fetch(`${srv.url}/`, { method });
      assert.equal(res.status, 405, method);
      assert.match(res.headers.get('allow') ?? '', /GET, PUT, POST, DELETE, PATCH, LIST/);
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

/** Every API response may carry a secret or a token: none may be kept by a cache, as Vault marks them. */
describe('Cache-Control on API responses', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
    await srv.api.call('POST', 'secret/data/cached', { body: { data: { password: 'NOT-FOR-CACHES' } } });
  });
  after(() => srv.stop());

  const get = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${srv.url}/v1/${path}`, {
      ...init,
      headers: { 'x-vault-token': srv.rootToken, 'content-type': 'application/json', ...init.headers },
    });

  const noStore = async (label: string, res: Response, status: number): Promise<void> => {
    assert.equal(res.status, status, label);
    assert.equal(res.headers.get('cache-control'), 'no-store', label);
    await res.body?.cancel();
  };

  it('a KV read', async () => {
    await noStore('kv read', await get('secret/data/cached'), 200);
  });

  it('a token create', async () => {
    await noStore('token create', await get('auth/token/create', { method: 'POST', body: '{}' }), 200);
  });

  it('errors, empty answers and raw bodies too', async () => {
    await noStore('403', await get('secret/data/cached', { headers: { 'x-vault-token': 'nope' } }), 403);
    await noStore('404', await get('secret/data/absent'), 404);
    await noStore('400', await get('secret/data/cached', { method: 'POST', body: '{' }), 400);
    await noStore('405', await get('sys/rotate', { method: 'OPTIONS' }), 405);
    await noStore('204', await get('sys/policies/acl/p', { method: 'PUT', body: '{"policy":"path \\"a\\" {}"}' }), 204);
    await noStore('sys/health', await get('sys/health'), 200);
    await noStore('outside /v1', await fetch(`${srv.url}/elsewhere`), 404);
  });

  it('the change stream', async () => {
    const controller = new AbortController();
    const res = await get('sys/cofre/events', { signal: controller.signal });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    controller.abort();
  });
});

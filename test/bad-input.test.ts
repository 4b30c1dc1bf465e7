import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'node:http';
import { startServer, type InProcessServer } from './support.js';

/** node:http sends the path as given; fetch would normalise the dots away. */
function rawRequest(
  url: string,
  method: string,
  path: string,
  token: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const req = request({ hostname, port, path, method, headers: { 'x-vault-token': token } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every bad request is a 4xx with a message that says what is wrong, never a 5xx, and writes nothing. */
describe('bad input', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
    await srv.api.call('POST', 'secret/data/keep', { body: { data: { v: 'original' } } });
  });
  after(() => srv.stop());

  const expect4xx = async (label: string, res: { status: number; body: { errors?: string[] } }, pattern?: RegExp) => {
    assert.ok(res.status >= 400 && res.status < 500, `${label}: status ${res.status}`);
    assert.ok(Array.isArray(res.body?.errors), `${label}: errors array`);
    if (pattern) assert.match(res.body.errors!.join(' '), pattern, label);
  };

  it('malformed JSON, without quoting the body back', async () => {
    const res = await srv.api.call('POST', 'secret/data/keep', {
      raw: '{"data": {"v": SECRET-IN-BROKEN-JSON',
      headers: { 'content-type': 'application/json' },
    });
    await expect4xx('malformed', res, /not valid JSON/);
    assert.equal(res.text.includes('SECRET-IN-BROKEN-JSON'), false);
  });

  it('a body that is not an object', async () => {
    await expect4xx('array', await srv.api.call('POST', 'secret/data/keep', { body: [1, 2] }), /object/);
    await expect4xx('string', await srv.api.call('POST', 'secret/data/keep', { raw: '"x"' }), /object/);
  });

  it('wrong types', async () => {
    await expect4xx(
      'data not a map',
      await srv.api.call('POST', 'secret/data/keep', { body: { data: 'nope' } }),
      /data/,
    );
    await expect4xx(
      'ttl not a duration',
      await srv.api.call('POST', 'auth/token/create', { body: { ttl: 'forever' } }),
      /ttl/,
    );
    await expect4xx(
      'shares not an int',
      await srv.api.call('POST', 'sys/mounts/x', { body: { type: 'kv', config: { max_lease_ttl: 'soon' } } }),
      /max_lease_ttl/,
    );
    await expect4xx(
      'max_versions',
      await srv.api.call('POST', 'secret/metadata/keep', { body: { max_versions: 'many' } }),
      /max_versions/,
    );
  });

  it('unknown fields where Vault rejects them', async () => {
    await expect4xx(
      'mount unknown field',
      await srv.api.call('POST', 'sys/mounts/y', { body: { type: 'kv', colour: 'red' } }),
      /colour/,
    );
    assert.equal((await srv.api.call('GET', 'sys/mounts/y')).status >= 400, true);
  });

  it('bodies over the limit', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024);
    const res = await srv.api.call('POST', 'secret/data/big', { body: { data: { big } } });
    assert.equal(res.status, 413);
    assert.equal((await srv.api.call('GET', 'secret/data/big')).status, 404);
  });

  it('.. and . in paths', async () => {
    const encoded = await rawRequest(srv.url, 'GET', '/v1/secret/data/a/%2E%2E/keep', srv.rootToken);
    assert.equal(encoded.status, 400, encoded.body);
    const raw = await rawRequest(srv.url, 'GET', '/v1/secret/data/a/../../../sys/mounts', srv.rootToken);
    assert.equal(raw.status, 400, raw.body);
    assert.match(raw.body, /\.\./);
  });

  it('unknown mounts and paths', async () => {
    await expect4xx('no mount', await srv.api.call('GET', 'nothing/here'), /no handler for route/);
    await expect4xx('unknown sys path', await srv.api.call('GET', 'sys/nonsense'), /unsupported path/);
  });

  it('missing, expired and revoked tokens', async () => {
    await expect4xx('missing', await srv.api.call('GET', 'secret/data/keep', { token: '' }), /permission denied/);
    await expect4xx(
      'bogus',
      await srv.api.call('GET', 'secret/data/keep', { token: 'cvs.bogus' }),
      /permission denied/,
    );
    const t = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
    await srv.api.call('POST', 'auth/token/revoke', { body: { token: t.body.auth.client_token } });
    await expect4xx(
      'revoked',
      await srv.api.call('GET', 'auth/token/lookup-self', { token: t.body.auth.client_token }),
      /permission denied/,
    );
  });

  it('a refused KV write leaves the stored value untouched', async () => {
    await expect4xx(
      'cas mismatch',
      await srv.api.call('POST', 'secret/data/keep', { body: { data: { v: 'new' }, options: { cas: 7 } } }),
      /check-and-set/,
    );
    await expect4xx(
      'patch wrong content type',
      await srv.api.call('PATCH', 'secret/data/keep', { body: { data: { v: 'new' } } }),
      /merge-patch/,
    );
    const read = await srv.api.call('GET', 'secret/data/keep');
    assert.equal(read.body.data.data.v, 'original');
    assert.equal(read.body.data.metadata.version, 1);
  });

  it('error messages never echo the secret value', async () => {
    const res = await srv.api.call('POST', 'secret/data/keep', {
      body: { data: { v: 'TOPSECRET-123' }, options: { cas: 99 } },
    });
    assert.equal(res.text.includes('TOPSECRET-123'), false);
  });
});

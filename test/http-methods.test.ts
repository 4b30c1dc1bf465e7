import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One request written byte for byte on its own connection (fetch and node:http refuse or rewrite odd methods),
 * read until the server closes it. The reply is parsed just enough for the assertions.
 */
function rawRequest(url: string, method: string, path: string, token: string): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`${method} ${path}: no reply in 10 s`)));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: rest.join('\r\n\r\n') });
    });
    socket.write(
      `${method} ${path} HTTP/1.1\r\nHost: ${hostname}\r\nX-Vault-Token: ${token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
  });
}

/** HEAD and methods outside Vault's set never reach a handler: above all, never one that writes. */
describe('HTTP methods', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  const term = async (): Promise<number> => (await srv.api.call('GET', 'sys/key-status')).body.data.term;
  const childToken = async (): Promise<string> =>
    (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } })).body.auth.client_token;

  const assert405 = (label: string, reply: RawReply): void => {
    assert.equal(reply.status, 405, `${label}: ${reply.status} ${reply.body}`);
    assert.match(reply.headers.allow ?? '', /GET.*PUT.*POST.*DELETE.*PATCH.*LIST/, `${label}: Allow header`);
    assert.equal(reply.headers['cache-control'], 'no-store', `${label}: Cache-Control`);
  };

  it('HEAD on auth/token/revoke-self leaves the token valid', async () => {
    const token = await childToken();
    const res = await fetch(`${srv.url}/v1/auth/token/revoke-self`, {
      method: 'HEAD',
      headers: { 'x-vault-token': token },
    });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow') ?? '', /GET/);
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
  });

  it('HEAD on sys/rotate leaves the key term unchanged', async () => {
    const before = await term();
    const res = await fetch(`${srv.url}/v1/sys/rotate`, {
      method: 'HEAD',
      headers: { 'x-vault-token': srv.rootToken },
    });
    assert.equal(res.status, 405);
    assert.equal(await term(), before);
  });

  it('HEAD on sys/health answers as GET does, without a body (as Vault documents)', async () => {
    const res = await fetch(`${srv.url}/v1/sys/health`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });

  for (const method of [
    'OPTIONS',
    'TRACE',
    'PROPFIND',
    'SEARCH',
    'MKCOL',
    'PURGE',
    'M-SEARCH',
    'FOO',
    'get',
    'CONNECT',
  ]) {
    it(`${method} is refused with 405 and an Allow header, and writes nothing`, async () => {
      const before = await term();
      const token = await childToken();
      assert405(`${method} rotate`, await rawRequest(srv.url, method, '/v1/sys/rotate', srv.rootToken));
      const revoke = await rawRequest(srv.url, method, '/v1/auth/token/revoke-self', token);
      assert405(`${method} revoke-self`, revoke);
      if (method !== 'CONNECT' && method !== 'FOO' && method !== 'get') {
        // Answered by the server proper: Vault's error envelope, saying what is wrong.
        assert.match(JSON.parse(revoke.body).errors.join(' '), new RegExp(`method ${method} not allowed`, 'i'));
      }
      assert.equal(await term(), before, `${method}: keyring rotated`);
      assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 200, `${method}: revoked`);
    });
  }

  it('the server still serves after odd methods, LIST included', async () => {
    assert.equal((await srv.api.call('GET', 'sys/key-status')).status, 200);
    await srv.api.call('POST', 'secret/data/listed/one', { body: { data: { v: '1' } } });
    const list = await rawRequest(srv.url, 'LIST', '/v1/secret/metadata/listed', srv.rootToken);
    assert.equal(list.status, 200, list.body);
    assert.deepEqual(JSON.parse(list.body).data.keys, ['one']);
  });

  it('GET ?list= takes every spelling of Go\'s ParseBool (hvac sends "True"), and refuses others with 400', async () => {
    await srv.api.call('POST', 'secret/data/spelled/one', { body: { data: { v: '1' } } });
    for (const value of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
      const res = await srv.api.call('GET', `secret/metadata/spelled?list=${value}`);
      assert.equal(res.status, 200, `${value}: ${res.text}`);
      assert.deepEqual(res.body.data.keys, ['one'], value);
    }
    for (const value of ['0', 'false', 'False']) {
      // Not a list: a read of the metadata of "spelled", which is no secret.
      const res = await srv.api.call('GET', `secret/metadata/spelled?list=${value}`);
      assert.equal(res.status, 404, `${value}: ${res.text}`);
    }
    for (const value of ['yes', 'on', 'tRUE']) {
      const res = await srv.api.call('GET', `secret/metadata/spelled?list=${value}`);
      assert.equal(res.status, 400, `${value}: ${res.text}`);
    }
  });
});

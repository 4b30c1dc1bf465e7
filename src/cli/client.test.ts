import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, apiUrl, resolveAddress, resolveCaCert, resolveConfig, resolveToken, VaultClient } from './client.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('configuration precedence', () => {
  it('address: flag, COFRE_ADDR, VAULT_ADDR, default', () => {
    const env = { COFRE_ADDR: 'http://cofre:1', VAULT_ADDR: 'http://vault:2' };
    assert.equal(resolveAddress('http://flag:3', env), 'http://flag:3');
    assert.equal(resolveAddress(undefined, env), 'http://cofre:1');
    assert.equal(resolveAddress(undefined, { VAULT_ADDR: 'http://vault:2' }), 'http://vault:2');
    assert.equal(resolveAddress(undefined, {}), 'http://127.0.0.1:8200');
  });

  it('token: COFRE_TOKEN, VAULT_TOKEN, then the token helper file', () => {
    const file = join(dir, 'tok');
    writeFileSync(file, 'from-file\n');
    assert.equal(resolveToken({ COFRE_TOKEN: 'c', VAULT_TOKEN: 'v', COFRE_TOKEN_FILE: file }), 'c');
    assert.equal(resolveToken({ VAULT_TOKEN: 'v', COFRE_TOKEN_FILE: file }), 'v');
    assert.equal(resolveToken({ COFRE_TOKEN_FILE: file }), 'from-file');
    assert.equal(resolveToken({ COFRE_TOKEN_FILE: join(dir, 'none') }), undefined);
  });

  it('CA bundle and TLS verification', () => {
    assert.equal(resolveCaCert(undefined, { COFRE_CACERT: '/c', VAULT_CACERT: '/v' }), '/c');
    assert.equal(resolveCaCert(undefined, { VAULT_CACERT: '/v' }), '/v');
    assert.equal(resolveCaCert('/f', { VAULT_CACERT: '/v' }), '/f');
    const none = join(dir, 'none');
    assert.equal(resolveConfig({}, { VAULT_SKIP_VERIFY: 'true', COFRE_TOKEN_FILE: none }).tlsSkipVerify, true);
    assert.equal(resolveConfig({}, { COFRE_TOKEN_FILE: none }).tlsSkipVerify, false);
  });

  it('builds /v1 URLs with escaped segments and query parameters', () => {
    assert.equal(
      apiUrl('http://h:1/', '/secret/data/a b', { version: '2' }),
      'http://h:1/v1/secret/data/a%20b?version=2',
    );
    assert.equal(apiUrl('http://h:1', 'sys/mounts'), 'http://h:1/v1/sys/mounts');
  });
});

interface Seen {
  method: string;
  url: string;
  token: string | undefined;
  contentType: string | undefined;
  body: string;
}

describe('VaultClient against a fake server', () => {
  let server: Server;
  let address = '';
  const seen: Seen[] = [];
  let respond: (req: IncomingMessage, res: ServerResponse, body: string) => void = () => {};

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          token: req.headers['x-vault-token'] as string | undefined,
          contentType: req.headers['content-type'],
          body,
        });
        respond(req, res, body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  it('sends the token header and JSON bodies', async () => {
    seen.length = 0;
    respond = (_req, res) => json(res, 200, { data: { ok: true } });
    const client = new VaultClient({ address, token: 's.tok' });
    const secret = await client.write('secret/data/x', { data: { a: 1 } });
    assert.deepEqual(secret?.data, { ok: true });
    assert.equal(seen[0]?.method, 'PUT');
    assert.equal(seen[0]?.url, '/v1/secret/data/x');
    assert.equal(seen[0]?.token, 's.tok');
    assert.equal(seen[0]?.contentType, 'application/json');
    assert.deepEqual(JSON.parse(seen[0]?.body ?? ''), { data: { a: 1 } });
  });

  it('parses {"errors": [...]} into an ApiError (exit code 1)', async () => {
    respond = (_req, res) => json(res, 403, { errors: ['permission denied', 'second'] });
    const client = new VaultClient({ address, token: 't' });
    await assert.rejects(client.write('secret/x', {}), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 403);
      assert.deepEqual(e.errors, ['permission denied', 'second']);
      assert.equal(e.exitCode, 1);
      assert.match(e.message, /Code: 403\. Errors:\n\n\* permission denied\n\* second/);
      return true;
    });
  });

  it('answers null for a 404 read, and the body when a 404 carries data', async () => {
    const client = new VaultClient({ address });
    respond = (_req, res) => json(res, 404, { errors: [] });
    assert.equal(await client.read('secret/none'), null);
    respond = (_req, res) => json(res, 404, { data: { metadata: { version: 2 } } });
    assert.deepEqual((await client.read('secret/deleted'))?.data, { metadata: { version: 2 } });
    respond = (_req, res) => json(res, 404, { errors: ['no handler for route'] });
    await assert.rejects(client.write('nowhere', { a: 1 }), ApiError);
  });

  it('lists with LIST, falling back to GET ?list=true when the method is refused', async () => {
    seen.length = 0;
    respond = (req, res) => json(res, 200, { data: { keys: ['a', 'b/'] }, echo: req.url });
    const client = new VaultClient({ address });
    const secret = await client.list('secret/metadata/');
    assert.deepEqual(secret?.data?.keys, ['a', 'b/']);
    // Node's HTTP parser rejects the LIST method outright, so the fake server only sees the fallback.
    assert.equal(seen.at(-1)?.method, 'GET');
    assert.equal(seen.at(-1)?.url, '/v1/secret/metadata/?list=true');
  });

  it('reports connection failures as errors naming the URL', async () => {
    const client = new VaultClient({ address: 'http://127.0.0.1:1' });
    await assert.rejects(
      client.read('sys/health'),
      /reading sys\/health: GET "http:\/\/127\.0\.0\.1:1\/v1\/sys\/health"/,
    );
  });
});

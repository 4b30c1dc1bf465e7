import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSignedCert, startServer, tempDir } from '../../test/support.js';
import { createCofre } from '../app.js';
import type { InProcessServer } from '../../test/support.js';
import {
  ApiError,
  apiUrl,
  resolveAddress,
  resolveAddressFrom,
  resolveCaCert,
  resolveConfig,
  resolveToken,
  VaultClient,
} from './client.js';
import type { Secret } from './client.js';

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

  it('address source: which of them gave the address (named when the server cannot be reached)', () => {
    const env = { COFRE_ADDR: 'http://cofre:1', VAULT_ADDR: 'http://vault:2' };
    assert.deepEqual(resolveAddressFrom('http://flag:3', env), { address: 'http://flag:3', source: '-address' });
    assert.deepEqual(resolveAddressFrom(undefined, env), { address: 'http://cofre:1', source: 'COFRE_ADDR' });
    assert.deepEqual(resolveAddressFrom(undefined, { VAULT_ADDR: 'http://vault:2' }).source, 'VAULT_ADDR');
    assert.deepEqual(resolveAddressFrom(undefined, {}), { address: 'http://127.0.0.1:8200', source: 'default' });
    assert.equal(resolveConfig({}, { COFRE_TOKEN_FILE: join(dir, 'none') }).addressSource, 'default');
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

describe('ApiError', () => {
  it('formats every server error, or the raw body when it was not JSON; exit code 1', () => {
    const url = 'http://h:1/v1/secret/x';
    const listed = new ApiError('writing secret/x', 'PUT', url, 403, ['permission denied', 'second'], undefined);
    assert.equal(listed.exitCode, 1);
    assert.match(listed.message, /^writing secret\/x: .*\n\nURL: PUT http:\/\/h:1\/v1\/secret\/x\n/);
    assert.match(listed.message, /Code: 403\. Errors:\n\n\* permission denied\n\* second$/);
    const raw = new ApiError('reading x', 'GET', url, 502, [], '<html>bad gateway</html>\n');
    assert.match(raw.message, /Code: 502\. Raw Message:\n\n<html>bad gateway<\/html>$/);
  });
});

/**
 * The client against a real Cofre server (test/support.ts: real SQLite file, real HTTP listener, initialised and
 * unsealed through the API). What the client sent is proven by what the server did with it, read back through
 * the API.
 */
describe('VaultClient against a real server', () => {
  let srv: InProcessServer;
  let client: VaultClient;

  before(async () => {
    srv = await startServer();
    client = new VaultClient({ address: srv.url, token: srv.rootToken });
  });
  after(() => srv?.stop());

  /** The ApiError `promise` rejects with, checked for its status and errors. */
  async function apiError(promise: Promise<unknown>, status: number, errors: RegExp): Promise<ApiError> {
    let caught: unknown;
    await promise.catch((e: unknown) => (caught = e));
    assert.ok(caught instanceof ApiError, `expected an ApiError, got ${String(caught)}`);
    assert.equal(caught.status, status, caught.message);
    assert.equal(caught.exitCode, 1);
    assert.match(caught.errors.join('\n'), errors);
    assert.ok(caught.message.includes(`\nCode: ${status}. Errors:`), caught.message);
    for (const e of caught.errors) assert.ok(caught.message.includes(`\n* ${e}`), caught.message);
    return caught;
  }

  it('sends JSON bodies with the token in X-Vault-Token', async () => {
    const written = await client.write('secret/data/json', { data: { a: 1, nested: { b: [true, null] } } });
    assert.equal(written?.data?.version, 1);
    const back = await srv.api.call('GET', 'secret/data/json');
    assert.equal(back.status, 200, back.text);
    assert.deepEqual(back.body.data.data, { a: 1, nested: { b: [true, null] } });
  });

  it('a refused token is a 403 ApiError; no token at all (token: null) too', async () => {
    const bad = new VaultClient({ address: srv.url, token: 'not-a-token' });
    const err = await apiError(bad.read('secret/data/json'), 403, /^permission denied: invalid or expired token$/);
    assert.equal(err.method, 'GET');
    assert.equal(err.url, `${srv.url}/v1/secret/data/json`);
    assert.match(err.message, /^reading secret\/data\/json: Error making API request\./);
    await apiError(
      client.request('GET', 'secret/data/json', { token: null }),
      403,
      /^permission denied: missing client token$/,
    );
    // A per-request token replaces the configured one.
    const ok = await bad.request('GET', 'secret/data/json', { token: srv.rootToken });
    assert.deepEqual((ok as Secret).data?.data, { a: 1, nested: { b: [true, null] } });
  });

  it('answers null for a missing secret, and the body when a 404 carries data (a deleted version)', async () => {
    assert.equal(await client.read('secret/data/none'), null);
    await client.write('secret/data/gone', { data: { x: 'y' } });
    assert.equal(await client.delete('secret/data/gone'), null, 'a 204 answers null');
    const deleted = await client.read('secret/data/gone');
    assert.equal(deleted?.data?.data, null);
    assert.equal((deleted?.data?.metadata as { version: number }).version, 1);
    assert.notEqual((deleted?.data?.metadata as { deletion_time: string }).deletion_time, '');
  });

  it('a write answered 404 is an ApiError, with the body when it carried warnings', async () => {
    await apiError(client.write('nowhere/x', { a: 1 }), 404, /^no handler for route "nowhere\/x"/);
    const err = await apiError(client.write('secret/plain', { a: 1 }), 404, /^$/);
    assert.match(err.secret?.warnings?.[0] ?? '', /Invalid path for a versioned K\/V secrets engine/);
  });

  it('bad input is a 400 ApiError', async () => {
    await apiError(client.write('secret/data/empty', { nodata: 1 }), 400, /^no data provided$/);
    await apiError(client.write('sys/mounts/bad', { type: 'no-such-engine' }), 400, /no-such-engine/);
    assert.equal((await srv.api.call('GET', 'secret/data/empty')).status, 404, 'nothing was written');
  });

  it('a 204 answers null', async () => {
    assert.equal(await client.write('sys/mounts/kv1', { type: 'kv' }), null);
    const mounts = await srv.api.call('GET', 'sys/mounts');
    assert.equal(mounts.body.data['kv1/'].type, 'kv');
  });

  it('sends query parameters', async () => {
    await client.write('secret/data/versions', { data: { v: 'one' } });
    await client.write('secret/data/versions', { data: { v: 'two' } });
    assert.deepEqual((await client.read('secret/data/versions'))?.data?.data, { v: 'two' });
    assert.deepEqual((await client.read('secret/data/versions', { version: '1' }))?.data?.data, { v: 'one' });
  });

  it('escapes path segments', async () => {
    await client.write('secret/data/dir/a b?c', { data: { k: 'v' } });
    assert.deepEqual((await client.read('secret/data/dir/a b?c'))?.data?.data, { k: 'v' });
    assert.deepEqual((await client.list('secret/metadata/dir'))?.data?.keys, ['a b?c']);
  });

  it('lists with the LIST verb, which the server takes natively', async () => {
    await client.write('secret/data/tree/leaf', { data: { a: 1 } });
    await client.write('secret/data/tree/sub/deeper', { data: { a: 1 } });
    assert.deepEqual((await client.list('secret/metadata/tree/'))?.data?.keys, ['leaf', 'sub/']);
    // The bare LIST request (no GET fallback behind it) is answered.
    const listed = (await client.request('LIST', 'secret/metadata/tree/')) as Secret;
    assert.deepEqual(listed.data?.keys, ['leaf', 'sub/']);
    assert.equal(await client.list('secret/metadata/no-such-dir/'), null);
    await apiError(
      new VaultClient({ address: srv.url, token: 'not-a-token' }).list('secret/metadata/tree/'),
      403,
      /^permission denied/,
    );
  });

  it('patches with a JSON merge patch (the server refuses PATCH with any other content type)', async () => {
    await client.write('secret/data/patched', { data: { a: 1, b: 2 } });
    await apiError(
      client.request('PATCH', 'secret/data/patched', { body: { data: { b: null } } }),
      415,
      /merge-patch\+json/,
    );
    await client.patch('secret/data/patched', { data: { b: null, c: 3 } });
    const back = await srv.api.call('GET', 'secret/data/patched');
    assert.deepEqual(back.body.data.data, { a: 1, c: 3 });
  });

  it('reports connection failures as "could not reach" the address, and where the address came from', async () => {
    const dead = new VaultClient({ address: 'http://127.0.0.1:1', addressSource: 'default' });
    await assert.rejects(dead.read('sys/health'), {
      message:
        'could not reach the server at http://127.0.0.1:1 (the default address; set VAULT_ADDR, COFRE_ADDR or ' +
        '-address to change it): bad port',
    });
    // A client configured elsewhere (the Kubernetes operator) names no source.
    await assert.rejects(new VaultClient({ address: 'http://127.0.0.1:1' }).read('sys/health'), {
      message: 'could not reach the server at http://127.0.0.1:1: bad port',
    });
    const invalid = new VaultClient({ address: 'cofre.example.com:8200', addressSource: 'VAULT_ADDR' });
    await assert.rejects(invalid.read('sys/health'), {
      message:
        'could not reach the server at cofre.example.com:8200 (address from VAULT_ADDR): the address is not an ' +
        'http:// or https:// URL (expected e.g. http://127.0.0.1:8200)',
    });
  });
});

describe('VaultClient over TLS', () => {
  it('verifies the server with the CA bundle, or not at all when told to skip verification', async () => {
    const tlsDir = tempDir('client-tls');
    const { key, cert } = selfSignedCert(tlsDir);
    const tls = { cert: readFileSync(cert), key: readFileSync(key) };
    const cofre = await createCofre({
      storage: { type: 'sqlite', path: join(tlsDir, 'cofre.db') },
      logLevel: 'error',
      tls,
    });
    try {
      await cofre.http.listen({ host: '127.0.0.1', port: 0 });
      const address = `https://127.0.0.1:${(cofre.http.server.address() as AddressInfo).port}`;
      assert.equal((await new VaultClient({ address, caCert: cert }).read('sys/seal-status'))?.initialized, false);
      assert.equal((await new VaultClient({ address, tlsSkipVerify: true }).read('sys/seal-status'))?.sealed, true);
      await assert.rejects(new VaultClient({ address }).read('sys/seal-status'), /self[- ]signed certificate/);
    } finally {
      await cofre.close();
      rmSync(tlsDir, { recursive: true, force: true });
    }
  });
});

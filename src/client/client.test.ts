import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { selfSignedCert, startServer, tempDir } from '../../test/support.js';
import { createCofre } from '../app.js';
import type { InProcessServer } from '../../test/support.js';
import { apiUrl, VaultClient } from './client.js';
import { streamRequest } from './stream.js';
import { ApiError, ClientError, UnreachableError } from './errors.js';
import type { Secret } from './wire.js';

describe('apiUrl', () => {
  it('builds /v1 URLs with escaped segments and query parameters', () => {
    assert.equal(
      apiUrl('http://h:1/', '/secret/data/a b', { version: '2' }),
      'http://h:1/v1/secret/data/a%20b?version=2',
    );
    assert.equal(apiUrl('http://h:1', 'sys/mounts'), 'http://h:1/v1/sys/mounts');
  });
});

describe('ApiError', () => {
  it('formats every server error, or the raw body when it was not JSON; a ClientError, with no exit code', () => {
    const url = 'http://h:1/v1/secret/x';
    const listed = new ApiError('writing secret/x', 'PUT', url, 403, ['permission denied', 'second'], undefined);
    assert.ok(listed instanceof ClientError);
    assert.equal('exitCode' in listed, false, "exit codes are the CLI's business");
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

  it('reports connection failures as "could not reach" the address, and where its user says it came from', async () => {
    const dead = new VaultClient({ address: 'http://127.0.0.1:1', addressOrigin: 'address from somewhere' });
    await assert.rejects(dead.read('sys/health'), (err: unknown) => {
      assert.ok(err instanceof UnreachableError);
      assert.equal(err.message, 'could not reach the server at http://127.0.0.1:1 (address from somewhere): bad port');
      assert.equal(err.address, 'http://127.0.0.1:1');
      assert.equal(err.reason, 'bad port');
      return true;
    });
    // A client configured without an origin (the Kubernetes operator) names none.
    await assert.rejects(new VaultClient({ address: 'http://127.0.0.1:1' }).read('sys/health'), {
      message: 'could not reach the server at http://127.0.0.1:1: bad port',
    });
    const invalid = new VaultClient({ address: 'cofre.example.com:8200' });
    await assert.rejects(invalid.read('sys/health'), {
      message:
        'could not reach the server at cofre.example.com:8200: the address is not an ' +
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
      // The CA as bytes (the operator has it from a CofreConnection), as a string or a Buffer.
      const pem = readFileSync(cert);
      assert.equal((await new VaultClient({ address, caCertBytes: pem }).read('sys/seal-status'))?.sealed, true);
      const asText = new VaultClient({ address, caCertBytes: pem.toString('utf8') });
      assert.equal((await asText.read('sys/seal-status'))?.sealed, true);
      const stream = await streamRequest(
        { address, caCertBytes: pem },
        { method: 'GET', path: 'sys/seal-status', what: 'x' },
      );
      stream.resume();
      await assert.rejects(new VaultClient({ address }).read('sys/seal-status'), (err: unknown) => {
        assert.ok(err instanceof UnreachableError);
        // Node.js 24 adds its own advice (--use-system-ca) after a ";"; no hint of ours without caHint.
        assert.match(err.message, /: TLS failed: self[- ]signed certificate(; [^(]*)?$/);
        return true;
      });
      // Its user says how to give a CA (the CLI names its flag and variables).
      await assert.rejects(new VaultClient({ address, caHint: 'give caBundle' }).read('sys/seal-status'), {
        message: /: TLS failed: self[- ]signed certificate.* \(give caBundle\)$/,
      });
    } finally {
      await cofre.close();
      rmSync(tlsDir, { recursive: true, force: true });
    }
  });
});

describe('a slow answer', () => {
  it('calls onSlow once after a second without an answer, saying what it waits for; nothing without onSlow', async () => {
    const server = createServer((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"data":{}}'), 1_300);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const notices: string[] = [];
      await new VaultClient({ address, onSlow: (m) => notices.push(m) }).read('sys/health');
      assert.deepEqual(notices, [`Waiting for ${address} to answer GET /v1/sys/health...`]);
      // Without onSlow the client says nothing anywhere (it never writes to stderr itself).
      const written: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array) => written.push(String(chunk)) > 0) as typeof write;
      try {
        await new VaultClient({ address }).read('sys/health');
      } finally {
        process.stderr.write = write;
      }
      assert.deepEqual(written, []);
    } finally {
      server.close();
    }
  });
});

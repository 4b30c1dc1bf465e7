import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VaultClient } from '../client/client.js';
import { ApiError, ClientError } from '../client/errors.js';
import {
  CA_HINT,
  resolveAddress,
  resolveAddressFrom,
  resolveCaCert,
  resolveConfig,
  resolveToken,
} from './connection.js';
import { reportError } from './program.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-connection-'));
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
    assert.equal(
      resolveConfig({}, { COFRE_TOKEN_FILE: join(dir, 'none') }).addressOrigin,
      'the default address; set VAULT_ADDR, COFRE_ADDR or -address to change it',
    );
    assert.equal(
      resolveConfig({}, { VAULT_ADDR: 'http://v:1', COFRE_TOKEN_FILE: join(dir, 'none') }).addressOrigin,
      'address from VAULT_ADDR',
    );
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
});

describe("the CLI's wording around the client", () => {
  const env = { COFRE_TOKEN_FILE: join(dir, 'none') };

  it('a server that cannot be reached: the address and where it came from', async () => {
    const dead = new VaultClient({ ...resolveConfig({}, env), address: 'http://127.0.0.1:1' });
    await assert.rejects(dead.read('sys/health'), {
      message:
        'could not reach the server at http://127.0.0.1:1 (the default address; set VAULT_ADDR, COFRE_ADDR or ' +
        '-address to change it): bad port',
    });
    const invalid = new VaultClient(resolveConfig({}, { ...env, VAULT_ADDR: 'cofre.example.com:8200' }));
    await assert.rejects(invalid.read('sys/health'), {
      message:
        'could not reach the server at cofre.example.com:8200 (address from VAULT_ADDR): the address is not an ' +
        'http:// or https:// URL (expected e.g. http://127.0.0.1:8200)',
    });
  });

  it('names its CA flag and variables after a TLS failure, and prints the slow notice on stderr', () => {
    const config = resolveConfig({}, env);
    assert.equal(config.caHint, CA_HINT);
    assert.match(CA_HINT, /-ca-cert, COFRE_CACERT or VAULT_CACERT/);
    assert.equal(typeof config.onSlow, 'function');
  });

  it("maps the client's errors to exit code 1, printing the error and an API error's warnings", () => {
    const out: string[] = [];
    const stderr = { write: (t: string) => out.push(t) };
    assert.equal(reportError(new ClientError('could not reach the server at x: y'), stderr), 1);
    assert.deepEqual(out, ['Error: could not reach the server at x: y\n']);
    out.length = 0;
    const err = new ApiError('writing a', 'PUT', 'http://h/v1/a', 404, [], undefined, { warnings: ['look here'] });
    assert.equal(reportError(err, stderr), 1);
    assert.match(out[0] ?? '', /^Error: writing a: Error making API request\./);
    assert.match(out.join(''), /look here/);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

/** Digests of "The quick brown fox", computed with Python's hashlib (not with node:crypto, which serves them). */
const FOX = 'VGhlIHF1aWNrIGJyb3duIGZveA==';
const FOX_DIGESTS: Record<string, string> = {
  'sha2-224': '146129bd31db775c819f4c28929cc5ac7130d4bac470e97134857c1a',
  'sha2-256': '5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9',
  'sha2-384': '2e45933dd1a1e6a6928a732d58abeb180c225e5e7b99c64eb6f233a7b99ee4635c17f44ca544cf620cf4289deb4c08cf',
  'sha2-512':
    '015e6d23e760f612cca616c54f110cb12dd54213f1e046c7607081372402eff4936b379296ed549236020afb37bd3e728a044a4243754f095498c98bc24f77e0',
  'sha3-224': 'c0144010bf2c56c005a2cb6b26cc7d2cce38a9ce8038babf0867cf6d',
  'sha3-256': '6a982a1fd2b2b33bf284768bd0e3df2a67ee3d412ae6f3df8248b268755751d4',
  'sha3-384': 'c82f7d2460b9dc489e9dea134c694de251b64e4b6862f7b8742fbce9d121e8e9b8bbc44972c1543f2fc885a398c191bc',
  'sha3-512':
    'ca5ce3b1097b2cc9b6d63e234b9db237537b0c2bbedb746ca6df1ef7d06ec50b72745167ba4f171b77367bd66272d5d0d8af02e5df14bf0f2dbddfcb11a788e3',
};

describe('sys/tools/hash and sys/tools/random', () => {
  let srv: InProcessServer;
  let defaultToken = '';
  const post = (path: string, body: unknown = {}, token?: string) =>
    srv.api.call('POST', path, { body, ...(token !== undefined ? { token } : {}) });

  before(async () => {
    srv = await startServer();
    const res = await post('auth/token/create', { policies: ['default'] });
    defaultToken = res.body.auth.client_token;
  });
  after(() => srv?.stop());

  it('hashes with every algorithm Vault offers, named in the URL or the body, in hex or base64', async () => {
    for (const [algorithm, hex] of Object.entries(FOX_DIGESTS)) {
      const inUrl = await post(`sys/tools/hash/${algorithm}`, { input: FOX });
      assert.equal(inUrl.status, 200, inUrl.text);
      assert.deepEqual(inUrl.body.data, { sum: hex }, algorithm);
      const inBody = await post('sys/tools/hash', { input: FOX, algorithm, format: 'base64' });
      assert.equal(inBody.body.data.sum, Buffer.from(hex, 'hex').toString('base64'), algorithm);
    }
    const byDefault = await post('sys/tools/hash', { input: FOX });
    assert.equal(byDefault.body.data.sum, FOX_DIGESTS['sha2-256']);
    const empty = await post('sys/tools/hash', {});
    assert.equal(empty.body.data.sum, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('refuses bad input with Vault’s messages', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['sys/tools/hash', { input: 'not base64!' }, /^unable to decode input as base64: illegal base64 data/],
      ['sys/tools/hash', { input: 'abc' }, /^unable to decode input as base64/],
      ['sys/tools/hash', { input: FOX, format: 'binary' }, /^unsupported encoding format binary; must be "hex"/],
      ['sys/tools/hash/md5', { input: FOX }, /^unsupported algorithm md5$/],
      ['sys/tools/hash', { input: FOX, algorithm: 'constructor' }, /^unsupported algorithm constructor$/],
      ['sys/tools/random', { bytes: 0 }, /^'bytes' cannot be less than 1$/],
      ['sys/tools/random', { bytes: 128 * 1024 + 1 }, /^'bytes' should be less than 131072$/],
      ['sys/tools/random/many', {}, /^error parsing url-set byte count/],
      ['sys/tools/random/dice/8', {}, /^unsupported entropy source "dice"/],
      ['sys/tools/random', { format: 'binary' }, /^unsupported encoding format "binary"/],
      ['sys/tools/random', { bytes: 'lots' }, /bytes/],
    ];
    for (const [path, body, message] of cases) {
      const res = await post(path, body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.body.errors.join('\n'), message, `${path} ${JSON.stringify(body)}`);
    }
  });

  it('random bytes: 32 by default in base64, counts and sources in the URL as Vault reads them, never repeated', async () => {
    const bytesOf = async (path: string, body: unknown = {}): Promise<Buffer> => {
      const res = await post(path, body);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      const value = res.body.data.random_bytes as string;
      const format = (body as { format?: string }).format ?? 'base64';
      if (format === 'hex') assert.match(value, /^[0-9a-f]*$/);
      return Buffer.from(value, format === 'hex' ? 'hex' : 'base64');
    };
    assert.equal((await bytesOf('sys/tools/random')).length, 32);
    assert.equal((await bytesOf('sys/tools/random', { bytes: 5, format: 'hex' })).length, 5);
    assert.equal((await bytesOf('sys/tools/random/16')).length, 16);
    assert.equal((await bytesOf('sys/tools/random/platform')).length, 32);
    assert.equal((await bytesOf('sys/tools/random/all/7')).length, 7);
    assert.equal((await bytesOf('sys/tools/random', { bytes: 128 * 1024 })).length, 128 * 1024);
    const seal = await post('sys/tools/random/seal/4');
    assert.deepEqual(seal.body.warnings, ['no seal/entropy augmentation available, using platform entropy source']);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add((await bytesOf('sys/tools/random')).toString('hex'));
    assert.equal(seen.size, 20);
  });

  it('the default policy may hash but not ask for random bytes, as in Vault', async () => {
    const hashed = await post('sys/tools/hash/sha2-256', { input: FOX }, defaultToken);
    assert.equal(hashed.status, 200, hashed.text);
    assert.equal((await post('sys/tools/random', {}, defaultToken)).status, 403);
    await writeOk(srv.api, 'sys/policies/acl/random-16', {
      policy: 'path "sys/tools/random/16" {\n  capabilities = ["update"]\n}\n',
    });
    const limited = (await post('auth/token/create', { policies: ['random-16'] })).body.auth.client_token;
    assert.equal((await post('sys/tools/random/16', {}, limited)).status, 200);
    assert.equal((await post('sys/tools/random/1024', {}, limited)).status, 403, 'the count in the URL is policed');
  });
});

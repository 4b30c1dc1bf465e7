import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodeVault from 'node-vault';
import { enableFileAudit, startServer, writeOk, type Api, type InProcessServer } from './support.js';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const unb64 = (value: string): string => Buffer.from(value, 'base64').toString('utf8');

async function encrypt(api: Api, key: string, text: string, extra: object = {}): Promise<string> {
  const res = await api.call('POST', `transit/encrypt/${key}`, { body: { plaintext: b64(text), ...extra } });
  assert.equal(res.status, 200, res.text);
  return res.body.data.ciphertext as string;
}

async function decrypt(
  api: Api,
  key: string,
  ciphertext: string,
): Promise<{ status: number; text: string; plain?: string }> {
  const res = await api.call('POST', `transit/decrypt/${key}`, { body: { ciphertext } });
  return {
    status: res.status,
    text: res.text,
    ...(res.status === 200 ? { plain: unb64(res.body.data.plaintext) } : {}),
  };
}

describe('transit secrets engine', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'sys/mounts/transit', { type: 'transit' });
  });
  after(() => srv.stop());

  it('creates keys of both types, lists and reads them without their material', async () => {
    const aes = await srv.api.call('POST', 'transit/keys/orders', {});
    assert.equal(aes.status, 200, aes.text);
    assert.equal(aes.body.data.type, 'aes256-gcm96');
    const chacha = await writeOk(srv.api, 'transit/keys/chats', { type: 'chacha20-poly1305' });
    assert.equal(chacha.body.data.type, 'chacha20-poly1305');
    const again = await writeOk(srv.api, 'transit/keys/orders', { type: 'chacha20-poly1305' });
    assert.deepEqual(again.body.warnings, ['key orders already existed']);
    assert.equal(again.body.data.type, 'aes256-gcm96', 'an existing key keeps its type');

    const read = await srv.api.call('GET', 'transit/keys/orders');
    assert.equal(read.status, 200);
    const data = read.body.data;
    assert.deepEqual(Object.keys(data.keys), ['1']);
    assert.equal(typeof data.keys['1'], 'number', 'a version shows its creation time, nothing else');
    assert.equal(Math.abs(data.keys['1'] - Date.now() / 1000) < 60, true);
    assert.equal(data.latest_version, 1);
    assert.equal(data.min_decryption_version, 1);
    assert.equal(data.deletion_allowed, false);
    assert.equal(data.supports_encryption, true);
    assert.doesNotMatch(read.text, /"key"|material/);

    const list = await srv.api.call('LIST', 'transit/keys');
    assert.deepEqual(list.body.data.keys.sort(), ['chats', 'orders']);
    assert.equal((await srv.api.call('GET', 'transit/keys/nothing')).status, 404);
  });

  it('encrypts and decrypts with both key types in Vault ciphertext format', async () => {
    for (const key of ['orders', 'chats']) {
      const ciphertext = await encrypt(srv.api, key, 'card 4111-1111');
      assert.match(ciphertext, /^vault:v1:[A-Za-z0-9+/]+=*$/);
      // nonce (12) + plaintext (14) + tag (16)
      assert.equal(Buffer.from(ciphertext.slice('vault:v1:'.length), 'base64').length, 12 + 14 + 16);
      assert.notEqual(await encrypt(srv.api, key, 'card 4111-1111'), ciphertext, 'nonces are random');
      assert.equal((await decrypt(srv.api, key, ciphertext)).plain, 'card 4111-1111');
    }
    const empty = await encrypt(srv.api, 'orders', '');
    assert.equal((await decrypt(srv.api, 'orders', empty)).plain, '');
    const single = await srv.api.call('POST', 'transit/encrypt/orders', { body: { plaintext: b64('x') } });
    assert.equal(single.body.data.key_version, 1);
  });

  it('refuses a ciphertext that was tampered with, made by another key or bound to other associated data', async () => {
    const ciphertext = await encrypt(srv.api, 'orders', 'total 12.50');
    const bytes = Buffer.from(ciphertext.slice('vault:v1:'.length), 'base64');
    bytes[14] = bytes[14]! ^ 1;
    const forged = await decrypt(srv.api, 'orders', `vault:v1:${bytes.toString('base64')}`);
    assert.equal(forged.status, 400);
    assert.match(forged.text, /message authentication failed/);
    assert.equal((await decrypt(srv.api, 'chats', ciphertext)).status, 400);

    const aad = b64('order-17');
    const bound = await encrypt(srv.api, 'orders', 'total 99', { associated_data: aad });
    const withAad = await srv.api.call('POST', 'transit/decrypt/orders', {
      body: { ciphertext: bound, associated_data: aad },
    });
    assert.equal(unb64(withAad.body.data.plaintext), 'total 99');
    const otherAad = await srv.api.call('POST', 'transit/decrypt/orders', {
      body: { ciphertext: bound, associated_data: b64('order-18') },
    });
    assert.equal(otherAad.status, 400);
    assert.equal((await decrypt(srv.api, 'orders', bound)).status, 400);
  });

  it('answers bad input with a 400 that says what is wrong', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', 'transit/keys/k-rsa', { type: 'rsa-2048' }, /unknown key type "rsa-2048"/],
      ['POST', 'transit/keys/k-conv', { convergent_encryption: true, derived: true }, /not supported/],
      ['POST', 'transit/keys/k-exp', { exportable: true }, /exportable keys are not supported/],
      ['POST', 'transit/keys/-bad-', {}, /invalid key name/],
      ['POST', 'transit/encrypt/orders', { plaintext: 'not base64!' }, /failed to base64-decode plaintext/],
      ['POST', 'transit/encrypt/orders', {}, /missing plaintext to encrypt/],
      ['POST', 'transit/encrypt/orders', { plaintext: b64('x'), key_version: 'two' }, /key_version.*integer/],
      ['POST', 'transit/encrypt/orders', { plaintext: b64('x'), key_version: 9 }, /higher than the latest/],
      ['POST', 'transit/encrypt/orders', { plaintext: b64('x'), nonce: b64('123456789012') }, /nonce not allowed/],
      ['POST', 'transit/encrypt/orders', { batch_input: 'plaintext' }, /batch_input must be a list/],
      ['POST', 'transit/encrypt/orders', { batch_input: [] }, /missing batch input/],
      ['POST', 'transit/encrypt/orders', { batch_input: [{ plaintext: 7 }, 'x'] }, /item 1 is not an object/],
      ['POST', 'transit/decrypt/orders', {}, /missing ciphertext to decrypt/],
      ['POST', 'transit/decrypt/orders', { ciphertext: 'abc' }, /invalid ciphertext: no prefix/],
      ['POST', 'transit/decrypt/orders', { ciphertext: 'vault:v1' }, /wrong number of fields/],
      ['POST', 'transit/decrypt/orders', { ciphertext: 'vault:vx:AAAA' }, /version number could not be decoded/],
      ['POST', 'transit/decrypt/orders', { ciphertext: 'vault:v1:%%%%' }, /could not decode base64/],
      [
        'POST',
        'transit/decrypt/orders',
        { ciphertext: 'vault:v7:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
        /invalid key version/,
      ],
      ['POST', 'transit/decrypt/nokey', { ciphertext: 'vault:v1:AAAA' }, /encryption key not found/],
      ['POST', 'transit/rewrap/nokey', { ciphertext: 'vault:v1:AAAA' }, /encryption key not found/],
      ['POST', 'transit/keys/nokey/rotate', {}, /key not found/],
      ['POST', 'transit/keys/orders/config', { min_decryption_version: 5 }, /latest key version is 1/],
      ['POST', 'transit/keys/orders/config', { min_decryption_version: -1 }, /cannot be negative/],
      ['POST', 'transit/keys/orders/config', { auto_rotate_period: '1h' }, /auto_rotate_period is not supported/],
      ['DELETE', 'transit/keys/orders', undefined, /deletion is not allowed for this key/],
    ];
    for (const [method, path, body, message] of cases) {
      const res = await srv.api.call(method, path, body === undefined ? {} : { body });
      assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${res.status} ${res.text}`);
      assert.match(res.body.errors.join(' '), message, `${path} ${JSON.stringify(body)}`);
    }
    assert.equal((await srv.api.call('GET', 'transit/keys/k-rsa')).status, 404, 'a refused create leaves no key');
    const unknownField = await srv.api.call('POST', 'transit/keys/orders/rotate', { body: { colour: 'red' } });
    assert.match(unknownField.body.warnings.join(' '), /unrecognized parameters: \[colour\]/);
    // That rotate succeeded: keep the later tests' expectations honest by reading the version back.
    assert.equal((await srv.api.call('GET', 'transit/keys/orders')).body.data.latest_version, 2);
  });

  it('batches: results in order with references, per-item errors, Vault status rules', async () => {
    const enc = await srv.api.call('POST', 'transit/encrypt/chats', {
      body: {
        batch_input: [
          { plaintext: b64('one'), reference: 'a' },
          { plaintext: b64('two'), reference: 'b' },
        ],
      },
    });
    assert.equal(enc.status, 200, enc.text);
    const [first, second] = enc.body.data.batch_results;
    assert.deepEqual([first.reference, second.reference, first.key_version], ['a', 'b', 1]);
    const dec = await srv.api.call('POST', 'transit/decrypt/chats', {
      body: { batch_input: [{ ciphertext: second.ciphertext }, { ciphertext: first.ciphertext }] },
    });
    assert.deepEqual(
      dec.body.data.batch_results.map((r: { plaintext: string }) => unb64(r.plaintext)),
      ['two', 'one'],
    );

    const mixed = {
      batch_input: [
        { ciphertext: first.ciphertext, reference: 'ok' },
        { ciphertext: 'junk', reference: 'bad' },
      ],
    };
    const partial = await srv.api.call('POST', 'transit/decrypt/chats', { body: mixed });
    assert.equal(partial.status, 400);
    assert.equal(unb64(partial.body.data.batch_results[0].plaintext), 'one');
    assert.deepEqual(partial.body.data.batch_results[1], { error: 'invalid ciphertext: no prefix', reference: 'bad' });
    const chosen = await srv.api.call('POST', 'transit/decrypt/chats', {
      body: { ...mixed, partial_failure_response_code: 207 },
    });
    assert.equal(chosen.status, 207);
    const allBad = await srv.api.call('POST', 'transit/decrypt/chats', {
      body: { batch_input: [{ ciphertext: 'junk' }], partial_failure_response_code: 207 },
    });
    assert.equal(allBad.status, 400, 'the override applies only when some items succeeded');
  });

  it('rotation: new versions encrypt, old ones decrypt until min_decryption_version, rewrap moves them up', async () => {
    await writeOk(srv.api, 'transit/keys/rotating', {});
    const v1 = await encrypt(srv.api, 'rotating', 'first');
    const rotated = await writeOk(srv.api, 'transit/keys/rotating/rotate');
    assert.equal(rotated.body.data.latest_version, 2);
    const v2 = await encrypt(srv.api, 'rotating', 'second');
    assert.match(v2, /^vault:v2:/);
    assert.match(await encrypt(srv.api, 'rotating', 'pinned', { key_version: 1 }), /^vault:v1:/);
    assert.equal((await decrypt(srv.api, 'rotating', v1)).plain, 'first');

    const rewrapped = await srv.api.call('POST', 'transit/rewrap/rotating', { body: { ciphertext: v1 } });
    assert.equal(rewrapped.status, 200, rewrapped.text);
    assert.equal(rewrapped.body.data.key_version, 2);
    assert.match(rewrapped.body.data.ciphertext, /^vault:v2:/);

    const config = await writeOk(srv.api, 'transit/keys/rotating/config', { min_decryption_version: 2 });
    assert.equal(config.body.data.min_decryption_version, 2);
    const old = await decrypt(srv.api, 'rotating', v1);
    assert.equal(old.status, 400);
    assert.match(old.text, /disallowed by policy \(too old\)/);
    assert.equal((await decrypt(srv.api, 'rotating', rewrapped.body.data.ciphertext)).plain, 'first');
    assert.equal((await decrypt(srv.api, 'rotating', v2)).plain, 'second');
    const oldRewrap = await srv.api.call('POST', 'transit/rewrap/rotating', { body: { ciphertext: v1 } });
    assert.equal(oldRewrap.status, 400);
    // A version retired for decryption seals nothing new either (Vault allows it without min_encryption_version):
    // what it sealed could not be read back.
    const retired = await srv.api.call('POST', 'transit/encrypt/rotating', {
      body: { plaintext: b64('x'), key_version: 1 },
    });
    assert.equal(retired.status, 400, retired.text);
    assert.match(retired.text, /less than the minimum decryption key version/);

    const below = await srv.api.call('POST', 'transit/keys/rotating/config', { body: { min_encryption_version: 1 } });
    assert.equal(below.status, 400);
    assert.match(below.text, /must be greater than or equal to min decryption version of 2/);
    await writeOk(srv.api, 'transit/keys/rotating/config', { min_encryption_version: 2 });
    const pinnedOld = await srv.api.call('POST', 'transit/encrypt/rotating', {
      body: { plaintext: b64('x'), key_version: 1 },
    });
    assert.match(pinnedOld.text, /less than the minimum encryption key version/);
    // min_decryption_version 0 leaves the setting as it was, as in Vault.
    await writeOk(srv.api, 'transit/keys/rotating/config', { min_decryption_version: 0 });
    assert.equal((await srv.api.call('GET', 'transit/keys/rotating')).body.data.min_decryption_version, 2);
  });

  it('concurrent rotations and encryptions lose no version and use only versions that exist', async () => {
    await writeOk(srv.api, 'transit/keys/busy', {});
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? srv.api.call('POST', 'transit/keys/busy/rotate', { body: {} })
          : srv.api.call('POST', 'transit/encrypt/busy', { body: { plaintext: b64(`n${i}`) } }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 200),
    );
    const key = (await srv.api.call('GET', 'transit/keys/busy')).body.data;
    assert.equal(key.latest_version, 21, 'each of the 20 rotations added one version');
    assert.equal(Object.keys(key.keys).length, 21);
    for (const [i, res] of results.entries()) {
      if (i % 2 === 0) continue;
      assert.equal((await decrypt(srv.api, 'busy', res.body.data.ciphertext)).plain, `n${i}`);
    }
  });

  it('deletes a key only once deletion is allowed', async () => {
    await writeOk(srv.api, 'transit/keys/doomed', {});
    const ciphertext = await encrypt(srv.api, 'doomed', 'bye');
    assert.equal((await srv.api.call('DELETE', 'transit/keys/doomed')).status, 400);
    await writeOk(srv.api, 'transit/keys/doomed/config', { deletion_allowed: true });
    assert.equal((await srv.api.call('DELETE', 'transit/keys/doomed')).status, 204);
    assert.equal((await srv.api.call('GET', 'transit/keys/doomed')).status, 404);
    assert.match((await decrypt(srv.api, 'doomed', ciphertext)).text, /encryption key not found/);
    assert.equal((await srv.api.call('DELETE', 'transit/keys/doomed')).status, 400);
  });

  it('a limited token uses only what its policy grants, and learns nothing about the rest', async () => {
    await writeOk(srv.api, 'transit/keys/app', {});
    await writeOk(srv.api, 'sys/policies/acl/app-crypto', {
      policy:
        'path "transit/encrypt/app" { capabilities = ["update"] }\n' +
        'path "transit/decrypt/app" { capabilities = ["update"] }\n' +
        'path "transit/encrypt/new-*" { capabilities = ["update"] }\n',
    });
    const created = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['app-crypto'] } });
    const token = created.body.auth.client_token as string;
    const call = (method: string, path: string, body?: unknown) =>
      srv.api.call(method, path, { token, ...(body === undefined ? {} : { body }) });

    const enc = await call('POST', 'transit/encrypt/app', { plaintext: b64('mine') });
    assert.equal(enc.status, 200, enc.text);
    const dec = await call('POST', 'transit/decrypt/app', { ciphertext: enc.body.data.ciphertext });
    assert.equal(unb64(dec.body.data.plaintext), 'mine');

    const denied: Array<[string, string, unknown?]> = [
      ['GET', 'transit/keys/app'],
      ['LIST', 'transit/keys'],
      ['POST', 'transit/keys/app/rotate', {}],
      ['POST', 'transit/keys/app/config', { deletion_allowed: true }],
      ['DELETE', 'transit/keys/app'],
      ['POST', 'transit/rewrap/app', { ciphertext: enc.body.data.ciphertext }],
      ['POST', 'transit/encrypt/orders', { plaintext: b64('x') }],
      ['POST', 'transit/decrypt/orders', { ciphertext: enc.body.data.ciphertext }],
      // update but not create: encrypt may not make a key that does not exist (Vault's upsert needs create).
      ['POST', 'transit/encrypt/new-key', { plaintext: b64('x') }],
      // Nothing tells a missing key from a forbidden one.
      ['POST', 'transit/decrypt/missing', { ciphertext: 'junk' }],
      ['POST', 'transit/keys/sneaky', {}],
    ];
    for (const [method, path, body] of denied) {
      const res = await call(method, path, body);
      assert.equal(res.status, 403, `${method} ${path}: ${res.status} ${res.text}`);
      assert.deepEqual(res.body.errors, ['permission denied']);
    }
    assert.equal((await srv.api.call('GET', 'transit/keys/new-key')).status, 404, 'no key was made');
    assert.equal((await srv.api.call('GET', 'transit/keys/sneaky')).status, 404);
    assert.equal((await srv.api.call('GET', 'transit/keys/app')).body.data.latest_version, 1, 'not rotated');
  });

  it('encrypt creates a missing key for a token with create, of the type asked for', async () => {
    const enc = await srv.api.call('POST', 'transit/encrypt/upserted', {
      body: { plaintext: b64('hi'), type: 'chacha20-poly1305' },
    });
    assert.equal(enc.status, 200, enc.text);
    assert.equal((await srv.api.call('GET', 'transit/keys/upserted')).body.data.type, 'chacha20-poly1305');
    const refused = await srv.api.call('POST', 'transit/encrypt/conv', {
      body: { plaintext: b64('hi'), convergent_encryption: true },
    });
    assert.equal(refused.status, 400);
    assert.equal((await srv.api.call('GET', 'transit/keys/conv')).status, 404);
  });

  it('keys survive a seal and unseal; the store and the audit log hold no key and no plaintext', async () => {
    const audit = join(srv.dir, 'audit.log');
    await enableFileAudit(srv.api, audit);
    const secret = 'plaintext-NEVER-in-the-log-4242';
    const ciphertext = await encrypt(srv.api, 'orders', secret);
    assert.equal((await decrypt(srv.api, 'orders', ciphertext)).plain, secret);
    const batchSecret = 'batch-plaintext-NEVER-logged-9191';
    const batch = await srv.api.call('POST', 'transit/encrypt/orders', {
      body: { batch_input: [{ plaintext: b64(batchSecret), reference: 'r1' }] },
    });
    const batchCiphertext = batch.body.data.batch_results[0].ciphertext as string;
    const opened = await srv.api.call('POST', 'transit/decrypt/orders', {
      body: { batch_input: [{ ciphertext: batchCiphertext }] },
    });
    assert.equal(unb64(opened.body.data.batch_results[0].plaintext), batchSecret);

    assert.equal((await srv.api.call('PUT', 'sys/seal')).status, 204);
    for (const key of srv.keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
    assert.equal((await decrypt(srv.api, 'orders', ciphertext)).plain, secret);

    const log = readFileSync(audit, 'utf8');
    assert.match(log, /transit\/decrypt\/orders/, 'the audit log has the requests');
    for (const needle of [secret, b64(secret), ciphertext, batchSecret, b64(batchSecret), batchCiphertext]) {
      assert.equal(log.includes(needle), false, needle);
    }
    await srv.cofre.close();
    for (const file of ['cofre.db', 'cofre.db-wal']) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(srv.dir, file));
      } catch {
        continue;
      }
      // A stored key in clear would show its JSON field names; the barrier leaves none.
      for (const needle of ['latest_version', 'min_decryption_version', 'aes256-gcm96', secret, b64(secret)]) {
        assert.equal(bytes.includes(Buffer.from(needle)), false, `${needle} in ${file}`);
      }
    }
  });
});

describe('transit through node-vault, a client we did not write', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  it('mounts, creates, encrypts, rotates, decrypts and rewraps with its generic calls', async () => {
    const vault = nodeVault({ apiVersion: 'v1', endpoint: srv.url, token: srv.rootToken });
    await vault.mount({ mount_point: 'transit', type: 'transit' });
    await vault.write('transit/keys/nv', { type: 'chacha20-poly1305' });
    const enc = await vault.write('transit/encrypt/nv', { plaintext: b64('from node-vault') });
    assert.match(enc.data.ciphertext, /^vault:v1:/);
    await vault.write('transit/keys/nv/rotate', {});
    const key = await vault.read('transit/keys/nv');
    assert.equal(key.data.latest_version, 2);
    assert.deepEqual(Object.keys(key.data.keys), ['1', '2']);
    const dec = await vault.write('transit/decrypt/nv', { ciphertext: enc.data.ciphertext });
    assert.equal(unb64(dec.data.plaintext), 'from node-vault');
    const rewrapped = await vault.write('transit/rewrap/nv', { ciphertext: enc.data.ciphertext });
    assert.match(rewrapped.data.ciphertext, /^vault:v2:/);
    const listed = await vault.list('transit/keys');
    assert.deepEqual(listed.data.keys, ['nv']);
    await assert.rejects(
      vault.write('transit/decrypt/nv', { ciphertext: 'vault:v1:AAAA' }),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 400,
    );
  });
});

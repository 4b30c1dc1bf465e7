import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadServerConfig } from '../cli/server-config.js';
import { parsePkcs11Seal } from './pkcs11-config.js';

const PIN = 'pin-in-file-4410';
const base = { lib: '/usr/lib/softhsm/libsofthsm2.so', token_label: 'cofre', pin: PIN, key_label: 'root' };

function refused(body: Record<string, unknown>, message: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => parsePkcs11Seal('cofre.hcl', body, env),
    (err: Error) => message.test(err.message) && !err.message.includes(PIN),
  );
}

describe('seal "pkcs11" settings', () => {
  it('reads a token label, a PIN, a key label and the flags', () => {
    assert.deepEqual(parsePkcs11Seal('cofre.hcl', { ...base, generate_key: 'true' }, {}), {
      lib: base.lib,
      tokenLabel: 'cofre',
      pin: PIN,
      keyLabel: 'root',
      generateKey: true,
      disabled: false,
    });
    const bySlot = parsePkcs11Seal('f', { ...base, token_label: undefined, slot: '0x5731a20f', disabled: true }, {});
    assert.deepEqual([bySlot.slot, bySlot.tokenLabel, bySlot.disabled], [0x5731a20f, undefined, true]);
    assert.equal(parsePkcs11Seal('f', { ...base, token_label: undefined, slot: 3 }, {}).slot, 3);
  });

  it('takes the PIN from COFRE_HSM_PIN (or VAULT_HSM_PIN) before the file', () => {
    assert.equal(parsePkcs11Seal('f', base, { COFRE_HSM_PIN: 'from-env' }).pin, 'from-env');
    assert.equal(parsePkcs11Seal('f', base, { VAULT_HSM_PIN: 'vault-env' }).pin, 'vault-env');
    const { pin: _pin, ...noPin } = base;
    assert.equal(parsePkcs11Seal('f', noPin, { COFRE_HSM_PIN: 'only-env' }).pin, 'only-env');
  });

  it('accepts CKM_AES_GCM by name, in hex and in decimal, and nothing else', () => {
    for (const mechanism of ['CKM_AES_GCM', '0x1087', '4231']) {
      assert.equal(parsePkcs11Seal('f', { ...base, mechanism }, {}).keyLabel, 'root');
    }
    refused({ ...base, mechanism: '0x9' }, /mechanism "0x9" is not supported; the seal uses CKM_AES_GCM \(0x1087\)/);
  });

  it('says which setting is wrong, and never prints the PIN', () => {
    const { pin: _pin, ...noPin } = base;
    refused(noPin, /needs pin \(or COFRE_HSM_PIN in the environment\)/);
    refused({ ...base, lib: undefined }, /needs lib/);
    refused({ ...base, key_label: '' }, /needs key_label/);
    refused({ ...base, slot: 1 }, /exactly one of slot and token_label/);
    refused({ ...base, token_label: undefined }, /exactly one of slot and token_label/);
    refused({ ...base, token_label: undefined, slot: 'first' }, /slot must be a slot ID/);
    refused({ ...base, hmac_key_label: 'x' }, /unknown settings hmac_key_label/);
  });

  it('is read from the server config; other seal types are refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cofre-seal-config-'));
    try {
      const file = join(dir, 'cofre.hcl');
      const common =
        'storage "sqlite" {\n  path = "/tmp/x.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n';
      writeFileSync(
        file,
        `${common}seal "pkcs11" {\n  lib = "/l.so"\n  token_label = "t"\n  pin = "${PIN}"\n  key_label = "k"\n  generate_key = true\n}\n`,
      );
      const config = loadServerConfig(file);
      assert.deepEqual([config.seal?.lib, config.seal?.tokenLabel, config.seal?.generateKey], ['/l.so', 't', true]);
      writeFileSync(file, `${common}seal "awskms" {\n  region = "x"\n}\n`);
      assert.throws(() => loadServerConfig(file), /unsupported seal "awskms" \(supported: pkcs11\)/);
      writeFileSync(file, common);
      assert.equal(loadServerConfig(file).seal, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

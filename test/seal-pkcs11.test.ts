import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type * as Pkcs11Module from 'pkcs11js';
import { apiClient, freePort, runCli, tempDir, type Api } from './support.js';
import { initSoftHsmToken, SOFTHSM_LIB } from './softhsm.js';

/**
 * The PKCS#11 seal against a real HSM implementation (SoftHSM2, a token this test initialises in its own
 * directory) and the real server process (`cofre server --config`), restarted as an operator would.
 */

const TOKEN = 'cofre-test';
const PIN = 'hsm-pin-58213';
const SO_PIN = 'hsm-so-pin-90417';
const KEY_LABEL = 'cofre-root';

interface ServerProcess {
  url: string;
  api: Api;
  output(): string;
  stop(): Promise<void>;
}

const CLI = ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config'];

function writeConfig(dir: string, port: number, seal: string): string {
  const file = join(dir, `cofre-${port}-${Math.random().toString(36).slice(2)}.hcl`);
  writeFileSync(
    file,
    `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}\n` +
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\nlog_level = "warn"\n${seal}`,
  );
  return file;
}

function pkcs11Block(opts: { keyLabel?: string; generate?: boolean; disabled?: boolean } = {}): string {
  return (
    `seal "pkcs11" {\n  lib = "${SOFTHSM_LIB}"\n  token_label = "${TOKEN}"\n  key_label = "${opts.keyLabel ?? KEY_LABEL}"\n` +
    `  mechanism = "0x1087"\n  generate_key = "${opts.generate ?? false}"\n` +
    (opts.disabled ? '  disabled = "true"\n' : '') +
    '}\n'
  );
}

async function startProcess(config: string, env: Record<string, string>): Promise<ServerProcess> {
  const port = Number(/address = "127\.0\.0\.1:(\d+)"/.exec(readFileSync(config, 'utf8'))![1]);
  const child: ChildProcess = spawn(process.execPath, [...CLI, config], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  // Started means it printed its state: the unseal on start has happened by then.
  while (!/Cofre server started/.test(out)) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start in 30 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    api: apiClient(url),
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A start that must fail: exit code and everything the process printed. */
function failedStart(config: string, env: Record<string, string>): { status: number | null; output: string } {
  const res = spawnSync(process.execPath, [...CLI, config], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

/** The raw value of a storage key in the SQLite file (the server must be stopped). */
function storedValue(dir: string, key: string): Buffer {
  const db = new Database(join(dir, 'cofre.db'), { readonly: true });
  try {
    const row = db.prepare('SELECT value FROM kv WHERE key = ?').get(key) as { value: Buffer } | undefined;
    assert.ok(row, `${key} is not in storage`);
    return row.value;
  } finally {
    db.close();
  }
}

/**
 * The test's own look into the HSM, through pkcs11js directly rather than the seal's code: the key's attributes,
 * and the HSM's decryption of what the server stored.
 */
function withToken<T>(conf: string, use: (p: typeof Pkcs11Module, m: Pkcs11Module.PKCS11, s: Buffer) => T): T {
  process.env.SOFTHSM2_CONF = conf;
  const p = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Module;
  const m = new p.PKCS11();
  m.load(SOFTHSM_LIB);
  m.C_Initialize();
  try {
    const slot = m.C_GetSlotList(true).find((s) => m.C_GetTokenInfo(s).label.trim() === TOKEN)!;
    const session = m.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    m.C_Login(session, p.CKU_USER, PIN);
    return use(p, m, session);
  } finally {
    m.C_Finalize();
  }
}

/** The private keys under a label (a public look-alike, made by a test below, is not the seal's). */
function findKeys(p: typeof Pkcs11Module, m: Pkcs11Module.PKCS11, s: Buffer, label: string): Buffer[] {
  m.C_FindObjectsInit(s, [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_LABEL, value: label },
    { type: p.CKA_PRIVATE, value: true },
  ]);
  const found = m.C_FindObjects(s, 10);
  m.C_FindObjectsFinal(s);
  return found;
}

/** An AES key made from a known value, as someone other than the seal would make one. */
function lookAlike(
  p: typeof Pkcs11Module,
  label: string,
  isPrivate: boolean,
  sensitive: boolean,
): Pkcs11Module.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_VALUE, value: Buffer.alloc(32, 7) },
    { type: p.CKA_LABEL, value: label },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_PRIVATE, value: isPrivate },
    { type: p.CKA_SENSITIVE, value: sensitive },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_ENCRYPT, value: true },
    { type: p.CKA_DECRYPT, value: true },
  ];
}

describe('PKCS#11 seal with SoftHSM2', () => {
  let dir: string;
  let hsmEnv: { SOFTHSM2_CONF: string };
  let env: Record<string, string>;
  let port: number;
  let rootToken = '';
  let recoveryKeys: string[] = [];
  before(async () => {
    dir = tempDir('seal-pkcs11');
    hsmEnv = initSoftHsmToken(dir, TOKEN, PIN, SO_PIN).env;
    // The PIN only in the environment, never in the config file.
    env = { ...hsmEnv, COFRE_HSM_PIN: PIN };
    port = await freePort();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses to start when the key is missing and generate_key is off, naming the key and the token', () => {
    const config = writeConfig(dir, port, pkcs11Block({ keyLabel: 'absent-key', generate: false }));
    const res = failedStart(config, env);
    assert.equal(res.status, 1, res.output);
    assert.match(
      res.output,
      /PKCS#11 seal: no key labelled "absent-key" on library \/usr\/lib\/softhsm\/libsofthsm2\.so, slot \d+ \(token "cofre-test"\) \(set generate_key = true to create it\)/,
    );
    assert.equal(res.output.includes(PIN), false);
    assert.deepEqual(
      withToken(hsmEnv.SOFTHSM2_CONF, (p, m, s) => findKeys(p, m, s, 'absent-key')),
      [],
      'nothing was created',
    );
  });

  it('refuses a key that a session without the PIN could use, or whose value can be read', () => {
    // Before, any AES key under the label was taken: a public one (which a session that has not logged in may use,
    // or create with a value of its choosing) or one whose value can be read.
    withToken(hsmEnv.SOFTHSM2_CONF, (p, m, s) => {
      for (const [label, isPrivate, sensitive] of [
        ['public-key', false, true],
        ['readable-key', true, false],
      ] as const) {
        m.C_CreateObject(s, lookAlike(p, label, isPrivate, sensitive));
      }
    });
    // Refused by name, and with generate_key no key is made beside it.
    for (const generate of [false, true]) {
      const publicKey = failedStart(writeConfig(dir, port, pkcs11Block({ keyLabel: 'public-key', generate })), env);
      assert.equal(publicKey.status, 1, publicKey.output);
      assert.match(
        publicKey.output,
        /key "public-key" on .* is refused: it can be used without logging in \(CKA_PRIVATE is false\)/,
      );
    }
    assert.deepEqual(
      withToken(hsmEnv.SOFTHSM2_CONF, (p, m, s) => findKeys(p, m, s, 'public-key')),
      [],
      'a private key was made beside the public one',
    );
    const readable = failedStart(writeConfig(dir, port, pkcs11Block({ keyLabel: 'readable-key' })), env);
    assert.equal(readable.status, 1, readable.output);
    assert.match(
      readable.output,
      /key "readable-key" on .* is refused: its value can be read \(CKA_SENSITIVE is false\)/,
    );
    assert.equal(readable.output.includes(PIN), false);
  });

  it('generate_key = true: creates a non-extractable AES key, init returns recovery keys, unsealed with no human step', async () => {
    const config = writeConfig(dir, port, pkcs11Block({ generate: true }));
    const server = await startProcess(config, env);
    try {
      assert.match(server.output(), /not initialized/);
      const init = await runCli(server.url, '', 'operator', 'init', '-recovery-shares=3', '-recovery-threshold=2');
      assert.equal(init.code, 0, init.out);
      recoveryKeys = [...init.out.matchAll(/^Recovery Key \d: (\S+)$/gm)].map((m) => m[1]!);
      rootToken = /^Initial Root Token: (\S+)$/m.exec(init.out)?.[1] ?? '';
      assert.equal(recoveryKeys.length, 3, init.out);
      assert.doesNotMatch(init.out, /Unseal Key/);
      const status = await server.api.call('GET', 'sys/seal-status');
      assert.deepEqual(
        [status.body.type, status.body.sealed, status.body.recovery_seal, status.body.t, status.body.n],
        ['pkcs11', false, true, 2, 3],
      );
      const cliStatus = await runCli(server.url, '', 'status');
      assert.equal(cliStatus.code, 0, cliStatus.out);
      assert.match(cliStatus.out, /Seal Type\s+pkcs11\n.*Recovery Seal Type\s+shamir/s);
      assert.match(cliStatus.out, /Total Recovery Shares\s+3\n/);
      const api = apiClient(server.url, rootToken);
      assert.equal(
        (await api.call('POST', 'sys/mounts/secret', { body: { type: 'kv', options: { version: '2' } } })).status,
        204,
      );
      const put = await api.call('PUT', 'secret/data/app', { body: { data: { password: 'hsm-guarded-1' } } });
      assert.equal(put.status, 200, put.text);
    } finally {
      await server.stop();
    }
    const [attributes] = withToken(hsmEnv.SOFTHSM2_CONF, (p, m, s) =>
      findKeys(p, m, s, KEY_LABEL).map((key) =>
        m
          .C_GetAttributeValue(s, key, [
            { type: p.CKA_KEY_TYPE },
            { type: p.CKA_EXTRACTABLE },
            { type: p.CKA_SENSITIVE },
            { type: p.CKA_TOKEN },
          ])
          .map((a) => (a.value as Buffer).readUInt8(0)),
      ),
    );
    // CKK_AES (0x1f), not extractable, sensitive, kept on the token.
    assert.deepEqual(attributes, [0x1f, 0, 1, 1]);
  });

  it('survives a restart: unsealed on start, the secret readable', async () => {
    const server = await startProcess(writeConfig(dir, port, pkcs11Block()), env);
    try {
      assert.match(server.output(), /unsealed by its seal/);
      const read = await apiClient(server.url, rootToken).call('GET', 'secret/data/app');
      assert.equal(read.body.data.data.password, 'hsm-guarded-1');
    } finally {
      await server.stop();
    }
  });

  it('a public key made under its label beside it is ignored: the seal still opens with its own', async () => {
    // Before, the look-alike made two keys under the label and the server refused to start.
    withToken(hsmEnv.SOFTHSM2_CONF, (p, m, s) => void m.C_CreateObject(s, lookAlike(p, KEY_LABEL, false, true)));
    const server = await startProcess(writeConfig(dir, port, pkcs11Block()), env);
    try {
      assert.match(server.output(), /unsealed by its seal/);
      assert.equal((await apiClient(server.url, rootToken).call('GET', 'secret/data/app')).status, 200);
    } finally {
      await server.stop();
    }
  });

  it('the root key is in storage only as the HSM wrapped it', () => {
    const stored = JSON.parse(storedValue(dir, 'core/root-key').toString('utf8'));
    assert.deepEqual([stored.seal, stored.mechanism, stored.key_label], ['pkcs11', 'CKM_AES_GCM', KEY_LABEL]);
    // Only the HSM opens it: the test asks the HSM itself.
    const rootKey = withToken(hsmEnv.SOFTHSM2_CONF, (p, m, s) => {
      const [key] = findKeys(p, m, s, KEY_LABEL);
      const iv = Buffer.from(stored.root.iv, 'base64');
      const parameter: Pkcs11Module.GcmParams = {
        type: p.CK_PARAMS_GCM,
        iv,
        ivBits: 96,
        aad: Buffer.from('cofre/pkcs11/root-key'),
        tagBits: 128,
      };
      m.C_DecryptInit(s, { mechanism: p.CKM_AES_GCM, parameter }, key!);
      const ciphertext = Buffer.from(stored.root.ciphertext, 'base64');
      return Buffer.from(m.C_Decrypt(s, ciphertext, Buffer.alloc(ciphertext.length + 32)));
    });
    assert.equal(rootKey.length, 32);
    const files = ['cofre.db', 'cofre.db-wal'].map((f) => join(dir, f)).filter((f) => existsSync(f));
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const form of [rootKey, Buffer.from(rootKey.toString('hex')), Buffer.from(rootKey.toString('base64'))]) {
        assert.equal(bytes.includes(form), false, `the root key is in ${file} in clear`);
      }
    }
    // The recovery keys are not in storage either (only the HSM's wrapping of the key they rebuild).
    const all = files.map((f) => readFileSync(f));
    for (const key of recoveryKeys)
      assert.equal(
        all.some((bytes) => bytes.includes(Buffer.from(key))),
        false,
      );
  });

  it('refuses to start with a wrong PIN, naming library, slot, token and return code but no PIN', () => {
    const wrong = 'wrong-pin-77123';
    const res = failedStart(writeConfig(dir, port, pkcs11Block()), { ...hsmEnv, COFRE_HSM_PIN: wrong });
    assert.equal(res.status, 1, res.output);
    assert.match(
      res.output,
      /PKCS#11 seal: C_Login failed on library \/usr\/lib\/softhsm\/libsofthsm2\.so, slot \d+ \(token "cofre-test"\): CKR_PIN_INCORRECT \(0xa0\)/,
    );
    assert.equal(res.output.includes(wrong), false, 'the wrong PIN is not printed');
    assert.equal(res.output.includes(PIN), false, 'the right PIN is not printed');
  });

  it('recovery keys: a threshold of them unseals after sys/seal, wrong ones are refused', async () => {
    const server = await startProcess(writeConfig(dir, port, pkcs11Block()), env);
    try {
      const api = apiClient(server.url, rootToken);
      assert.equal((await api.call('PUT', 'sys/seal')).status, 204);
      assert.equal((await api.call('GET', 'secret/data/app')).status, 503);
      const bogus = Buffer.alloc(33, 7).toString('base64');
      await api.call('PUT', 'sys/unseal', { body: { key: bogus } });
      const refused = await api.call('PUT', 'sys/unseal', { body: { key: recoveryKeys[0] } });
      assert.equal(refused.status, 400, refused.text);
      for (const key of recoveryKeys.slice(1, 3)) await api.call('PUT', 'sys/unseal', { body: { key } });
      assert.equal((await api.call('GET', 'sys/seal-status')).body.sealed, false);
      assert.equal((await api.call('GET', 'secret/data/app')).body.data.data.password, 'hsm-guarded-1');

      // generate-root acts on the recovery keys' authority: a forged share must not pass because the HSM could
      // unwrap the root key by itself.
      const call = (path: string, body: unknown) => api.call('PUT', path, { token: '', body });
      const start = await call('sys/generate-root/attempt', {});
      const { nonce, otp } = start.body;
      const forged = Buffer.from(recoveryKeys[1]!, 'base64');
      forged[3] = forged[3]! ^ 0x5a;
      await call('sys/generate-root/update', { key: recoveryKeys[0], nonce });
      const wrong = await call('sys/generate-root/update', { key: forged.toString('base64'), nonce });
      assert.equal(wrong.status, 400, wrong.text);
      assert.equal(wrong.body.encoded_token, undefined);
      assert.match(wrong.body.errors[0], /^root generation aborted/);
      // The attempt goes on with its progress reset: a threshold of real recovery keys completes it.
      await call('sys/generate-root/update', { key: recoveryKeys[2], nonce });
      const last = await call('sys/generate-root/update', { key: recoveryKeys[1], nonce });
      assert.equal(last.body.complete, true, last.text);
      const bytes = Buffer.from(last.body.encoded_token, 'base64');
      const token = Buffer.from(bytes.map((b, i) => b ^ otp.charCodeAt(i))).toString('utf8');
      const self = await apiClient(server.url, token).call('GET', 'auth/token/lookup-self');
      assert.deepEqual(self.body.data.policies, ['root']);

      // rekey: a threshold of recovery keys makes new recovery keys; the old ones stop working.
      const rekey = await call('sys/rekey/init', { secret_shares: 2, secret_threshold: 2 });
      assert.equal(rekey.status, 200, rekey.text);
      await call('sys/rekey/update', { key: recoveryKeys[0], nonce: rekey.body.nonce });
      const rekeyForged = await call('sys/rekey/update', { key: forged.toString('base64'), nonce: rekey.body.nonce });
      assert.equal(rekeyForged.status, 400, 'a forged recovery key does not count');
      assert.match(rekeyForged.body.errors[0], /^root key verification failed/);
      await call('sys/rekey/update', { key: recoveryKeys[0], nonce: rekey.body.nonce });
      const rekeyed = await call('sys/rekey/update', { key: recoveryKeys[2], nonce: rekey.body.nonce });
      assert.equal(rekeyed.body.complete, true, rekeyed.text);
      const newKeys = rekeyed.body.keys_base64 as string[];
      assert.equal(newKeys.length, 2);
      assert.equal((await api.call('PUT', 'sys/seal')).status, 204);
      for (const key of recoveryKeys.slice(0, 2)) await api.call('PUT', 'sys/unseal', { body: { key } });
      assert.equal((await api.call('GET', 'sys/seal-status')).body.sealed, true, 'the old recovery keys are void');
      await api.call('PUT', 'sys/unseal', { body: { reset: true } });
      for (const key of newKeys) await api.call('PUT', 'sys/unseal', { body: { key } });
      assert.equal((await api.call('GET', 'sys/seal-status')).body.sealed, false);
      recoveryKeys = newKeys;
    } finally {
      await server.stop();
    }
  });

  it('a snapshot restored on the HSM-sealed server is unsealed again by the seal, with no human step', async () => {
    const server = await startProcess(writeConfig(dir, port, pkcs11Block()), env);
    try {
      const api = apiClient(server.url, rootToken);
      const headers = { 'x-vault-token': rootToken };
      const saved = await fetch(`${server.url}/v1/sys/storage/snapshot`, { headers });
      assert.equal(saved.status, 200);
      const snapshot = Buffer.from(await saved.arrayBuffer());
      await api.call('PUT', 'secret/data/app', { body: { data: { password: 'after-the-snapshot' } } });
      const restored = await fetch(`${server.url}/v1/sys/storage/snapshot`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(snapshot),
      });
      assert.equal(restored.status, 204, await restored.text());
      assert.equal((await api.call('GET', 'sys/seal-status')).body.sealed, false);
      assert.equal((await api.call('GET', 'secret/data/app')).body.data.data.password, 'hsm-guarded-1');
    } finally {
      await server.stop();
    }
  });

  it('a different key under another label does not open the store: the start fails and nothing changes', () => {
    const before = storedValue(dir, 'core/root-key');
    const res = failedStart(writeConfig(dir, port, pkcs11Block({ keyLabel: 'other-key', generate: true })), env);
    assert.equal(res.status, 1, res.output);
    assert.match(res.output, /C_Decrypt with key "other-key" failed on library .*\(token "cofre-test"\): CKR_\w+/);
    assert.deepEqual(storedValue(dir, 'core/root-key'), before);
  });
});

describe('seal migration: Shamir → PKCS#11 → Shamir', () => {
  let dir: string;
  let hsmEnv: { SOFTHSM2_CONF: string };
  before(() => {
    dir = tempDir('seal-migrate');
    hsmEnv = initSoftHsmToken(dir, TOKEN, PIN, SO_PIN).env;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every secret readable, and the same key shares work throughout', async () => {
    const port = await freePort();
    const env = { ...hsmEnv, COFRE_HSM_PIN: PIN };
    const shamirConfig = writeConfig(dir, port, '');
    const secrets = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${i}`, `value-${i}-${i * 7919}`]));
    const readAll = async (api: Api): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      for (const name of Object.keys(secrets)) {
        out[name] = (await api.call('GET', `secret/data/${name}`)).body?.data?.data?.v;
      }
      return out;
    };

    // 1. A Shamir server with secrets.
    let server = await startProcess(shamirConfig, {});
    let keys: string[];
    let root: string;
    try {
      const init = await server.api.call('PUT', 'sys/init', { body: { secret_shares: 3, secret_threshold: 2 } });
      keys = init.body.keys_base64;
      root = init.body.root_token;
      for (const key of keys.slice(0, 2)) await server.api.call('PUT', 'sys/unseal', { body: { key } });
      const api = apiClient(server.url, root);
      await api.call('POST', 'sys/mounts/secret', { body: { type: 'kv', options: { version: '2' } } });
      for (const [name, v] of Object.entries(secrets)) {
        assert.equal((await api.call('PUT', `secret/data/${name}`, { body: { data: { v } } })).status, 200);
      }
    } finally {
      await server.stop();
    }

    // 2. Configured with the PKCS#11 seal: sealed, migration pending, until the Shamir keys are given with -migrate.
    server = await startProcess(writeConfig(dir, port, pkcs11Block({ generate: true })), env);
    try {
      assert.match(server.output(), /seal migration pending/);
      const status = (await server.api.call('GET', 'sys/seal-status')).body;
      assert.deepEqual([status.sealed, status.migration, status.type], [true, true, 'pkcs11']);
      const cliStatus = await runCli(server.url, '', 'status');
      assert.equal(cliStatus.code, 2, 'sealed');
      assert.match(cliStatus.out, /Seal Migration in Progress\s+true/);
      const plain = await server.api.call('PUT', 'sys/unseal', { body: { key: keys[0] } });
      assert.equal(plain.status, 400);
      assert.match(plain.text, /sealed by the \\"shamir\\" seal .* unseal with -migrate/);
      const wrong = await runCli(
        server.url,
        '',
        'operator',
        'unseal',
        '-migrate',
        Buffer.alloc(32, 1).toString('base64'),
      );
      assert.equal(wrong.code, 0, wrong.out);
      const wrongAgain = await runCli(
        server.url,
        '',
        'operator',
        'unseal',
        '-migrate',
        Buffer.alloc(32, 2).toString('base64'),
      );
      assert.notEqual(wrongAgain.code, 0, 'two wrong shares do not migrate anything');
      for (const key of keys.slice(1, 3)) {
        const res = await runCli(server.url, '', 'operator', 'unseal', '-migrate', key);
        assert.equal(res.code, 0, res.out);
      }
      const after = (await server.api.call('GET', 'sys/seal-status')).body;
      assert.deepEqual(
        [after.sealed, after.migration, after.type, after.recovery_seal],
        [false, false, 'pkcs11', true],
      );
      assert.deepEqual(await readAll(apiClient(server.url, root)), secrets);
    } finally {
      await server.stop();
    }
    assert.equal(JSON.parse(storedValue(dir, 'core/root-key').toString('utf8')).seal, 'pkcs11');

    // 3. Restarted: unsealed by the HSM; the old unseal keys are now the recovery keys.
    server = await startProcess(writeConfig(dir, port, pkcs11Block()), env);
    try {
      assert.match(server.output(), /unsealed by its seal/);
      const api = apiClient(server.url, root);
      assert.deepEqual(await readAll(api), secrets);
      await api.call('PUT', 'sys/seal');
      for (const key of keys.slice(0, 2)) await api.call('PUT', 'sys/unseal', { body: { key } });
      assert.equal((await api.call('GET', 'sys/seal-status')).body.sealed, false);
    } finally {
      await server.stop();
    }

    // 4. Back to Shamir: the PKCS#11 block marked disabled; the recovery keys migrate and become unseal keys.
    server = await startProcess(writeConfig(dir, port, pkcs11Block({ disabled: true })), env);
    try {
      assert.match(server.output(), /seal migration pending/);
      for (const key of keys.slice(0, 2)) {
        const res = await runCli(server.url, '', 'operator', 'unseal', '-migrate', key);
        assert.equal(res.code, 0, res.out);
      }
      const status = (await server.api.call('GET', 'sys/seal-status')).body;
      assert.deepEqual([status.sealed, status.type, status.recovery_seal], [false, 'shamir', false]);
      assert.deepEqual(await readAll(apiClient(server.url, root)), secrets);
    } finally {
      await server.stop();
    }

    // 5. A Shamir server again, with no HSM configured: sealed on start, the same keys unseal it.
    server = await startProcess(shamirConfig, {});
    try {
      assert.match(server.output(), /sealed until unsealed/);
      for (const key of [keys[2]!, keys[0]!]) await server.api.call('PUT', 'sys/unseal', { body: { key } });
      assert.deepEqual(await readAll(apiClient(server.url, root)), secrets);
    } finally {
      await server.stop();
    }
  });
});

// `cofre kms-plugin` behind a real kube-apiserver: the API server is started with an EncryptionConfiguration whose
// KMS v2 provider is the plugin's socket; the plugin wraps the API server's data keys with a transit key in an
// in-process Cofre server, logging in with AppRole. Secrets are read back through the API and raw from etcd; the
// transit key is rotated; the plugin is stopped and started again; its login is taken away.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import { get, startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { kmsService, type EncryptResponse, type StatusResponse } from '../src/kube/kms-plugin/grpc.js';
import { etcdDump } from './kube-support.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';

const VALUE = 'kms-protected-value-6d0e1f';

interface KmsClient {
  Status(req: object, cb: (err: grpc.ServiceError | null, res: StatusResponse) => void): void;
  Encrypt(
    req: { plaintext: Buffer; uid: string },
    cb: (err: grpc.ServiceError | null, res: EncryptResponse) => void,
  ): void;
  Decrypt(
    req: { ciphertext: Buffer; uid: string; key_id: string },
    cb: (err: grpc.ServiceError | null, res: { plaintext: Buffer }) => void,
  ): void;
  close(): void;
}

describe('cofre kms-plugin: kube-apiserver encrypts Secrets in etcd with a key Cofre holds', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-kms-'));
  const socket = path.join(dir, 'kms.sock');
  const roleIdFile = path.join(dir, 'role-id');
  const secretIdFile = path.join(dir, 'secret-id');
  let srv: InProcessServer;
  let cluster: TestCluster;
  let core: k8s.CoreV1Api;
  let plugin: ChildProcess | undefined;
  let output = '';
  let client: KmsClient;

  const startPlugin = async () => {
    plugin = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'src/cli/main.ts', 'kms-plugin', '--socket', socket, '--cofre-address', srv.url],
        ...['--key', 'kube', '--approle-role-id-file', roleIdFile, '--approle-secret-id-file', secretIdFile],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    plugin.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    plugin.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await poll(
      () => `the plugin's socket (output: ${output})`,
      async () => existsSync(socket),
      30_000,
    );
  };
  const stopPlugin = async () => {
    const p = plugin!;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
    plugin = undefined;
  };
  const status = () =>
    new Promise<StatusResponse>((resolve, reject) => client.Status({}, (e, r) => (e ? reject(e) : resolve(r))));
  const raw = async (name: string) => {
    const entry = (await etcdDump(cluster.etcdUrl!)).find((e) => e.key === `/registry/secrets/default/${name}`);
    assert.ok(entry, `secret ${name} in etcd`);
    return entry.value.subarray(entry.key.length);
  };
  const createSecret = (name: string, value: string) =>
    core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name }, stringData: { value } },
    });
  const health = async () => {
    const res = await get(`${cluster.server}/healthz/kms-providers`, cluster.caCert, cluster.adminToken);
    return res;
  };

  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'sys/mounts/transit', { type: 'transit' });
    await writeOk(srv.api, 'transit/keys/kube', { type: 'aes256-gcm96' });
    await writeOk(srv.api, 'sys/policies/acl/kms', {
      policy:
        'path "transit/encrypt/kube" { capabilities = ["update"] }\n' +
        'path "transit/decrypt/kube" { capabilities = ["update"] }\n' +
        'path "transit/keys/kube" { capabilities = ["read"] }\n',
    });
    await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
    await writeOk(srv.api, 'auth/approle/role/kms', {
      token_policies: ['kms'],
      token_ttl: '30s',
      token_max_ttl: '60s',
    });
    const roleId = await srv.api.call('GET', 'auth/approle/role/kms/role-id');
    writeFileSync(roleIdFile, roleId.body.data.role_id, { mode: 0o600 });
    const secretId = await writeOk(srv.api, 'auth/approle/role/kms/secret-id');
    writeFileSync(secretIdFile, secretId.body.data.secret_id, { mode: 0o600 });
    await startPlugin();
    client = new (kmsService())(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as KmsClient;

    const config = path.join(dir, 'encryption.yaml');
    writeFileSync(
      config,
      [
        'apiVersion: apiserver.config.k8s.io/v1',
        'kind: EncryptionConfiguration',
        'resources:',
        '  - resources: [secrets]',
        '    providers:',
        '      - kms:',
        '          apiVersion: v2',
        '          name: cofre',
        `          endpoint: unix://${socket}`,
        '          timeout: 3s',
        '      - identity: {}',
        '',
      ].join('\n'),
    );
    cluster = await startCluster({
      name: 'kms',
      controllerManager: false,
      apiserverArgs: ['--encryption-provider-config', config],
    });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
  });

  after(async () => {
    client?.close();
    if (plugin) await stopPlugin();
    await cluster?.stop();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers Status with the transit key’s version as key_id, and wraps and unwraps', async () => {
    const s = await status();
    assert.deepEqual(s, { version: 'v2', healthz: 'ok', key_id: 'cofre:transit/kube:v1' });
    const enc = await new Promise<EncryptResponse>((resolve, reject) =>
      client.Encrypt({ plaintext: Buffer.from('a data key'), uid: '1' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    assert.equal(enc.key_id, 'cofre:transit/kube:v1');
    assert.match(enc.ciphertext.toString(), /^vault:v1:/);
    const dec = await new Promise<{ plaintext: Buffer }>((resolve, reject) =>
      client.Decrypt({ ciphertext: enc.ciphertext, uid: '2', key_id: enc.key_id }, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
    assert.equal(dec.plaintext.toString(), 'a data key');
  });

  it('a Secret reads back through the API, and etcd holds it encrypted under the plugin (k8s:enc:kms:v2:)', async () => {
    await createSecret('first', VALUE);
    const read = await core.readNamespacedSecret({ namespace: 'default', name: 'first' });
    assert.equal(Buffer.from(read.data!.value!, 'base64').toString(), VALUE);
    const stored = await raw('first');
    assert.ok(stored.toString('latin1').startsWith('k8s:enc:kms:v2:cofre:'), stored.subarray(0, 40).toString('latin1'));
    assert.ok(!stored.includes(VALUE), 'the value is not in etcd');
    assert.ok(!stored.includes(Buffer.from(VALUE).toString('base64')), 'nor its base64');
    assert.ok(stored.includes('cofre:transit/kube:v1'), 'the key id is stored with it');
  });

  it('after the transit key rotates, new Secrets carry the new key_id and old ones still decrypt', async (t) => {
    await writeOk(srv.api, 'transit/keys/kube/rotate');
    assert.equal((await status()).key_id, 'cofre:transit/kube:v2');
    // The API server polls Status (every minute while healthy) and then encrypts under the new key.
    const started = Date.now();
    let n = 0;
    await poll(
      'a new Secret stored under key v2',
      async () => {
        const name = `after-${n++}`;
        await createSecret(name, VALUE);
        return (await raw(name)).includes('cofre:transit/kube:v2');
      },
      150_000,
      5_000,
    );
    t.diagnostic(`new Secrets carried the new key id ${Date.now() - started} ms after the rotation`);
    const old = await core.readNamespacedSecret({ namespace: 'default', name: 'first' });
    assert.equal(Buffer.from(old.data!.value!, 'base64').toString(), VALUE, 'the v1 Secret still decrypts');
  });

  it('with the plugin stopped the kms-providers health check fails; back, it passes and Status says ok', async () => {
    assert.equal((await health()).status, 200);
    await stopPlugin();
    const down = await poll(
      'the health check failing',
      async () => {
        const res = await health();
        return res.status !== 200 ? res : undefined;
      },
      90_000,
      1_000,
    );
    assert.match(
      down.body,
      /kms-provider-0: failed to perform status section of the healthz check for KMS Provider cofre/,
    );
    await startPlugin();
    await poll('the health check passing again', async () => (await health()).status === 200, 90_000, 1_000);
    assert.equal((await status()).healthz, 'ok');
  });

  it('the static-pod manifest and the EncryptionConfiguration in deploy/kms-plugin/ are accepted', async () => {
    const { readFileSync } = await import('node:fs');
    const yaml = (await import('js-yaml')).default;
    const pod = yaml.load(readFileSync('deploy/kms-plugin/static-pod.yaml', 'utf8')) as k8s.V1Pod;
    // A static pod becomes a mirror pod; checked here as a plain pod, which needs the namespace's default account (no
    // controller manager makes it in this cluster).
    await core.createNamespacedServiceAccount({ namespace: 'kube-system', body: { metadata: { name: 'default' } } });
    await core.createNamespacedPod({ namespace: 'kube-system', body: pod, dryRun: 'All' });
    assert.deepEqual(pod.spec!.containers[0]!.command!.slice(0, 2), ['cofre', 'kms-plugin']);
    // The example configuration has the shape the test's API server runs with: KMS v2 first, identity after.
    const config = yaml.load(readFileSync('deploy/kms-plugin/encryption-configuration.yaml', 'utf8')) as {
      kind: string;
      resources: { providers: { kms?: { apiVersion: string; endpoint: string } }[] }[];
    };
    assert.equal(config.kind, 'EncryptionConfiguration');
    assert.equal(config.resources[0]!.providers[0]!.kms!.apiVersion, 'v2');
    assert.equal(config.resources[0]!.providers[0]!.kms!.endpoint, 'unix:///var/run/cofre-kms/kms.sock');
    assert.ok(
      pod.spec!.containers[0]!.command!.includes('--socket=/var/run/cofre-kms/kms.sock'),
      'the manifest serves the socket the configuration names',
    );
  });

  it('a plugin that cannot log in reports it in Status instead of failing silently, and recovers', async () => {
    // Its token revoked and its secret_id destroyed: the next Status finds no way to log in.
    await writeOk(srv.api, 'sys/leases/revoke-prefix/auth/approle/login');
    await writeOk(srv.api, 'auth/approle/role/kms/secret-id/destroy', {
      secret_id: (await import('node:fs')).readFileSync(secretIdFile, 'utf8'),
    });
    const unhealthy = await poll(
      'an unhealthy Status',
      async () => {
        const s = await status();
        return s.healthz !== 'ok' ? s : undefined;
      },
      30_000,
      500,
    );
    assert.match(unhealthy.healthz, /AppRole login: 400: invalid (role or )?secret id|AppRole login: .*secret/i);
    assert.ok(!unhealthy.healthz.includes(srv.rootToken));
    // A new secret_id in the file (as an operator would rotate it): the plugin logs in again by itself.
    const fresh = await writeOk(srv.api, 'auth/approle/role/kms/secret-id');
    writeFileSync(secretIdFile, fresh.body.data.secret_id, { mode: 0o600 });
    await poll('a healthy Status again', async () => (await status()).healthz === 'ok', 30_000, 500);
    assert.doesNotMatch(output, new RegExp(fresh.body.data.secret_id as string), 'no secret_id in the log');
  });
});

// `cofre csi-provider` as the Secrets Store CSI Driver sees it: the test plays the driver. It dials the provider's
// unix socket with gRPC, calls Version, then Mount with the attributes the driver sends (the SecretProviderClass's
// parameters, the pod, and a service-account token from a real kube-apiserver's TokenRequest) and checks the files
// and versions; a KV write then a second Mount with the current versions gives the new content; a namespace whose
// role may not read gets a clear error and no file; without a token from the driver, the provider mints one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import type { TestDatabase } from '../scripts/test-databases.js';
import { canLogIn, postgres } from './database-flavors.js';
import { providerService, type MountRequestMessage, type MountResponseMessage } from '../src/kube/csi-provider/grpc.js';
import { enableKubernetesAuth } from './kube-support.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';

const NS = 'apps';
const OTHER_NS = 'other';
const SA = 'web';
const PG_TTL = 4;

interface Driver {
  Version(req: { version: string }, cb: (err: grpc.ServiceError | null, res: Record<string, string>) => void): void;
  Mount(req: MountRequestMessage, cb: (err: grpc.ServiceError | null, res: MountResponseMessage) => void): void;
  close(): void;
}

describe('cofre csi-provider, driven as the Secrets Store CSI Driver drives it', () => {
  let cluster: TestCluster;
  let srv: InProcessServer;
  let core: k8s.CoreV1Api;
  let provider: ChildProcess;
  let output = '';
  let driver: Driver;
  let db: TestDatabase | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-csi-'));
  const password = 'csi-pw-5b1e0c7d';
  const rotated = 'csi-pw-rotated-90a3f2';
  const cert = Buffer.from('binary-\u0000-cert-bytes');

  before(async () => {
    cluster = await startCluster({ name: 'csi', controllerManager: false });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    for (const ns of [NS, OTHER_NS]) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: SA } } });
    }
    srv = await startServer();
    await enableKubernetesAuth(srv.api, cluster, kc);
    await writeOk(srv.api, 'sys/policies/acl/web', {
      policy:
        'path "secret/data/web/*" {\n  capabilities = ["read"]\n}\n' +
        'path "database/creds/app" {\n  capabilities = ["read"]\n}\n',
    });
    db = await postgres.start();
    for (const sql of postgres.setup('csi_admin', 'csi-admin-pw-41d2')) await db.query(sql);
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'database/config/main', {
      plugin_name: postgres.plugin,
      connection_url: postgres.connectionUrl(db),
      username: 'csi_admin',
      password: 'csi-admin-pw-41d2',
      allowed_roles: '*',
    });
    await writeOk(srv.api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: postgres.creation,
      default_ttl: PG_TTL,
      max_ttl: 300,
    });
    for (const [role, ns, policies] of [
      ['web', NS, ['web']],
      ['other', OTHER_NS, []],
    ] as const)
      await writeOk(srv.api, `auth/kubernetes/role/${role}`, {
        bound_service_account_names: [SA],
        bound_service_account_namespaces: [ns],
        audience: 'cofre',
        token_policies: policies,
        token_ttl: '10m',
      });
    await writeOk(srv.api, 'secret/data/web/db', { data: { password, user: 'web' } });
    await writeOk(srv.api, 'secret/data/web/tls', { data: { cert: cert.toString('base64') } });

    provider = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'src/cli/main.ts', 'csi-provider', '--provider-dir', dir],
        ...['--cofre-address', srv.url, '--kubeconfig', cluster.kubeconfigPath, '--pod-check-interval', '1'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    provider.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    provider.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const socket = path.join(dir, 'cofre.sock');
    await poll(
      () => `the provider's socket (output: ${output})`,
      async () => existsSync(socket),
      30_000,
    );
    const Client = providerService();
    driver = new Client(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Driver;
  });

  after(async () => {
    driver?.close();
    provider?.kill('SIGTERM');
    await srv?.stop();
    await cluster?.stop();
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = <Req, Res>(method: 'Version' | 'Mount', req: Req): Promise<Res> =>
    new Promise((resolve, reject) =>
      (driver[method] as unknown as (r: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => void).call(
        driver,
        req,
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  const token = async (namespace: string) =>
    (
      await core.createNamespacedServiceAccountToken({
        namespace,
        name: SA,
        body: { spec: { audiences: ['cofre'], expirationSeconds: 600 } },
      })
    ).status!.token;
  const objects = `
- objectName: db-password
  secretPath: secret/data/web/db
  secretKey: password
  filePermission: 0600
- objectName: db.json
  secretPath: secret/data/web/db
- objectName: tls/cert.der
  secretPath: secret/data/web/tls
  secretKey: cert
  encoding: base64
`;
  const attributes = (namespace: string, role: string, extra: Record<string, string> = {}) =>
    JSON.stringify({
      roleName: role,
      audience: 'cofre',
      objects,
      'csi.storage.k8s.io/pod.name': 'web-0',
      'csi.storage.k8s.io/pod.namespace': namespace,
      'csi.storage.k8s.io/serviceAccount.name': SA,
      ...extra,
    });
  const mount = (attrs: string, current: { id: string; version: string }[] = []) =>
    call<MountRequestMessage, MountResponseMessage>('Mount', {
      attributes: attrs,
      secrets: '{}',
      target_path: '/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/secrets/mount',
      permission: '420',
      current_object_version: current,
    });
  const withToken = async (namespace: string) => ({
    'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ cofre: { token: await token(namespace) } }),
  });

  it('answers Version with its name', async () => {
    const res = await call<{ version: string }, Record<string, string>>('Version', { version: 'v1alpha1' });
    assert.equal(res.runtime_name, 'cofre');
    assert.match(res.runtime_version!, /^\d+\.\d+\.\d+/);
  });

  let first: MountResponseMessage;
  it('mounts the objects with the driver’s token: files, modes and versions (an HMAC, never the content)', async () => {
    first = await mount(attributes(NS, 'web', await withToken(NS)));
    const files = new Map(first.files.map((f) => [f.path, f]));
    assert.deepEqual([...files.keys()], ['db-password', 'db.json', 'tls/cert.der']);
    assert.equal(files.get('db-password')!.contents.toString(), password);
    assert.equal(files.get('db-password')!.mode, 0o600);
    assert.deepEqual(JSON.parse(files.get('db.json')!.contents.toString()), { password, user: 'web' });
    assert.equal(files.get('db.json')!.mode, 420, 'the driver’s default permission');
    assert.deepEqual(files.get('tls/cert.der')!.contents, cert, 'base64 in Cofre, bytes in the file');
    assert.deepEqual(
      first.object_version.map((v) => v.id),
      ['db-password', 'db.json', 'tls/cert.der'],
    );
    for (const v of first.object_version) {
      assert.match(v.version, /^[0-9a-f]{32}$/);
      assert.ok(!v.version.includes(Buffer.from(password).toString('hex').slice(0, 8)));
    }
    // Not a plain hash either: nobody can test a guess of the value against a version.
    const { createHash } = await import('node:crypto');
    assert.ok(
      !first.object_version.some((v) => createHash('sha256').update(password).digest('hex').startsWith(v.version)),
    );
  });

  it('after a KV write, a Mount with the current versions returns the new content and a new version', async () => {
    await writeOk(srv.api, 'secret/data/web/db', { data: { password: rotated, user: 'web' } });
    const second = await mount(attributes(NS, 'web', await withToken(NS)), first.object_version);
    const file = second.files.find((f) => f.path === 'db-password')!;
    assert.equal(file.contents.toString(), rotated);
    const version = (res: MountResponseMessage, id: string) => res.object_version.find((v) => v.id === id)!.version;
    assert.notEqual(version(second, 'db-password'), version(first, 'db-password'));
    assert.equal(
      version(second, 'tls/cert.der'),
      version(first, 'tls/cert.der'),
      'an unchanged object keeps its version',
    );
  });

  it('refuses a namespace whose role may not read the path, naming the object and path, with no file', async () => {
    const err = await mount(attributes(OTHER_NS, 'other', await withToken(OTHER_NS))).then(
      () => assert.fail('the mount was allowed'),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /object "db-password": GET secret\/data\/web\/db failed: 403: permission denied/);
    assert.ok(!err.details.includes(rotated));
    // A token of the wrong namespace for the role is refused at login.
    const wrong = await mount(attributes(OTHER_NS, 'web', await withToken(OTHER_NS))).then(
      () => assert.fail('the login was allowed'),
      (e: grpc.ServiceError) => e,
    );
    assert.match(wrong.details, /login to auth\/kubernetes as role "web" for other\/web failed/);
  });

  it('mints a token through TokenRequest when the driver sends none, bound to the pod', async () => {
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'web-0' },
        spec: { serviceAccountName: SA, nodeName: 'no-such-node', containers: [{ name: 'a', image: 'a' }] },
      },
    });
    const res = await mount(attributes(NS, 'web', { 'csi.storage.k8s.io/pod.uid': pod.metadata!.uid! }));
    assert.equal(res.files.find((f) => f.path === 'db-password')!.contents.toString(), rotated);
  });

  it('holds a dynamic credential for its pod: the same user at the next Mount, renewed, revoked with the pod', async (t) => {
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'db-0' },
        spec: { serviceAccountName: SA, nodeName: 'no-such-node', containers: [{ name: 'a', image: 'a' }] },
      },
    });
    const attrs = JSON.stringify({
      ...JSON.parse(attributes(NS, 'web', await withToken(NS))),
      objects: '- objectName: pg.json\n  secretPath: database/creds/app\n',
      'csi.storage.k8s.io/pod.name': 'db-0',
      'csi.storage.k8s.io/pod.uid': pod.metadata!.uid!,
    });
    const leases = async () => {
      const res = await srv.api.call('LIST', 'sys/leases/lookup/database/creds/app/');
      return res.status === 404 ? [] : (res.body.data.keys as string[]);
    };
    const first = await mount(attrs);
    const cred = JSON.parse(first.files[0]!.contents.toString()) as { username: string; password: string };
    assert.ok(await canLogIn(postgres, db!, cred.username, cred.password), 'the credential logs in');
    const [leaseKey] = await leases();
    assert.ok(leaseKey);
    // The driver's rotation poll: the same credential, not a new database user per poll.
    const second = await mount(attrs, first.object_version);
    assert.deepEqual(second.files[0]!.contents, first.files[0]!.contents);
    assert.deepEqual(second.object_version, first.object_version);
    assert.deepEqual(await leases(), [leaseKey], 'one lease for the pod');
    // Renewed before its TTL, and valid past it.
    const lookup = async () =>
      (await writeOk(srv.api, 'sys/leases/lookup', { lease_id: `database/creds/app/${leaseKey}` })).body.data;
    const issued = Date.parse((await lookup()).issue_time);
    const renewed = await poll('a renewal', async () => (await lookup()).last_renewal ?? undefined, PG_TTL * 1000);
    t.diagnostic(`renewed ${Date.parse(renewed) - issued} ms after it was issued (TTL ${PG_TTL} s)`);
    await poll('past the first TTL', async () => Date.now() - issued > PG_TTL * 1000 + 500, PG_TTL * 1000 + 2_000);
    assert.ok(await canLogIn(postgres, db!, cred.username, cred.password), 'still valid past its first TTL');
    // The pod goes: the provider revokes what it held for it.
    const deleted = Date.now();
    await core.deleteNamespacedPod({ namespace: NS, name: 'db-0', gracePeriodSeconds: 0 });
    await poll('the role leaves pg_roles', async () => !(await postgres.userExists(db!, cred.username)), 15_000, 200);
    t.diagnostic(`role dropped ${Date.now() - deleted} ms after the pod's deletion`);
    assert.deepEqual(await leases(), []);
    assert.ok(!output.includes(cred.password), 'the password is not in the provider’s log');
  });

  it('refuses bad parameters with a message naming them', async () => {
    const refused = async (attrs: Record<string, unknown>, message: RegExp) => {
      const err = await mount(JSON.stringify(attrs)).then(
        () => assert.fail('accepted'),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, message);
    };
    const base = JSON.parse(attributes(NS, 'web')) as Record<string, unknown>;
    await refused({ ...base, roleName: undefined }, /roleName: is required/);
    await refused({ ...base, objects: 'a: [' }, /objects: is not YAML/);
    await refused(
      { ...base, objects: '- objectName: ../x\n  secretPath: a' },
      /objectName.*without "\." or "\.\." segments/,
    );
    await refused(
      { ...base, objects: '- objectName: x\n  secretPath: a\n  secretKeys: b' },
      /unknown field "secretKeys"/,
    );
    await refused({ ...base, objects: '- objectName: x\n  secretPath: a\n  encoding: rot13' }, /encoding/);
  });

  it('never logs a value or a token', () => {
    assert.match(output, /mounted/);
    for (const v of [password, rotated, cert.toString('base64')]) assert.ok(!output.includes(v));
    assert.doesNotMatch(output, /eyJ[A-Za-z0-9_-]{20,}/, 'no JWT');
  });
});

// The real Secrets Store CSI Driver (sigs.k8s.io/secrets-store-csi-driver v1.6.0, built by
// scripts/csi-driver-binary.sh) against `cofre csi-provider`, with the test acting as the kubelet through the CSI
// Node API. A real kube-apiserver holds the driver's CRDs, RBAC and CSIDriver from the release's deploy/, the
// SecretProviderClasses and the pods; the driver runs as its own service account, with secret rotation on. The test
// calls NodePublishVolume with the volume context the kubelet builds from the CSIDriver object (the pod's identity,
// and a service-account token from a real TokenRequest bound to the pod) and checks: the tmpfs mount, the files
// from Cofre's KV with their modes, the SecretProviderClassPodStatus, the synced Secret (secretObjects); that a KV
// write reaches the file and the Secret at the next republish after the rotation interval and not before; that a
// role that may not read gives the driver's error and no file; that a PostgreSQL credential is held for its pod
// across the driver's republishes and revoked once the pod is gone; and that NodeUnpublishVolume unmounts.
//
// The driver mounts tmpfs, so this needs root; it skips, saying so, otherwise.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as k8s from '@kubernetes/client-node';
import { createManifests, crdFiles, csiDriverBuild, type CsiDriverBuild } from '../scripts/csi-driver.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import type { TestDatabase } from '../scripts/test-databases.js';
import { canLogIn, postgres } from './database-flavors.js';
import { enableKubernetesAuth } from './kube-support.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';

const DRIVER_NAME = 'secrets-store.csi.k8s.io';
const NODE = 'csi-node-1';
const NS = 'apps';
const OTHER_NS = 'other';
const SA = 'web';
const SPC = 'web-secrets';
const DB_SPC = 'db-creds';
const VOLUME = 'secrets';
const SYNCED_SECRET = 'web-db';
// Short, so that the test sees the driver skip a republish inside it and act on the next one after it.
const ROTATION_SECONDS = 4;
const SPC_GROUP = { group: 'secrets-store.csi.x-k8s.io', version: 'v1' };

const skip =
  typeof process.getuid === 'function' && process.getuid() !== 0 ? 'the driver mounts tmpfs: run as root' : false;

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
type Rpc = (req: object, cb: Callback<Record<string, unknown>>) => void;
type CsiClient = grpc.Client & Record<string, Rpc>;

/** The mount at `target` in this process's mount namespace (the driver's too): its file system type, or undefined. */
function mountAt(target: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // "36 35 0:45 / /mnt/x rw,relatime shared:1 - tmpfs tmpfs rw": the 5th field is the mount point (octal-escaped),
    // the first after " - " the file system type.
    const [left, right] = line.split(' - ');
    const mountPoint = left
      ?.split(' ')[4]
      ?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mountPoint === target) return right?.split(' ')[0];
  }
  return undefined;
}

describe('the real Secrets Store CSI Driver with cofre csi-provider, the test as the kubelet', { skip }, () => {
  let build: CsiDriverBuild;
  let cluster: TestCluster;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let srv: InProcessServer;
  let db: TestDatabase | undefined;
  let provider: ChildProcess | undefined;
  let driver: ChildProcess | undefined;
  let providerLog = '';
  let driverLog = '';
  let identity: CsiClient;
  let node: CsiClient;
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-csi-driver-'));
  const providerDir = path.join(dir, 'providers');
  const kubeletDir = path.join(dir, 'kubelet');
  const endpoint = path.join(dir, 'csi.sock');
  // Each target path published, with the volume id the kubelet gave it (and gives again to unpublish it).
  const volumeIds = new Map<string, string>();
  const password = 'drv-pw-3c9e41aa';
  const rotated = 'drv-pw-rotated-7d02bf';
  const rotatedAgain = 'drv-pw-again-e51c08';
  const cert = Buffer.from('der-\u0000-bytes-of-a-cert');

  before(async () => {
    build = await csiDriverBuild();
    cluster = await startCluster({ name: 'csi-driver', controllerManager: false });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);

    // What installing the driver puts in the cluster: its CRDs, its service account and roles, its CSIDriver, with
    // the token request for Cofre's audience that the kubelet reads (the chart's tokenRequests value).
    const deploy = (f: string) => path.join(build.deployDir, f);
    await createManifests(kc, [
      ...crdFiles(build.deployDir),
      ...['rbac-secretproviderclass.yaml', 'rbac-secretprovidersyncing.yaml', 'csidriver.yaml'].map(deploy),
    ]);
    await kc
      .makeApiClient(k8s.StorageV1Api)
      .patchCSIDriver(
        { name: DRIVER_NAME, body: { spec: { tokenRequests: [{ audience: 'cofre' }] } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );

    srv = await startServer();
    await enableKubernetesAuth(srv.api, cluster, kc);
    await writeOk(srv.api, 'sys/policies/acl/web', {
      policy:
        'path "secret/data/web/*" {\n  capabilities = ["read"]\n}\n' +
        'path "database/creds/app" {\n  capabilities = ["read"]\n}\n',
    });
    db = await postgres.start();
    for (const sql of postgres.setup('drv_admin', 'drv-admin-pw-8e31')) await db.query(sql);
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'database/config/main', {
      plugin_name: postgres.plugin,
      connection_url: postgres.connectionUrl(db),
      username: 'drv_admin',
      password: 'drv-admin-pw-8e31',
      allowed_roles: '*',
    });
    // A TTL well past the test's republishes: renewal is test/csi-provider.test.ts's concern.
    await writeOk(srv.api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: postgres.creation,
      default_ttl: 120,
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

    // Each namespace: the service account, a SecretProviderClass (with secretObjects: a synced Secret) and a pod
    // bound to our node that mounts it, as a user would write them; only the role differs.
    for (const [ns, role] of [
      [NS, 'web'],
      [OTHER_NS, 'other'],
    ] as const) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: SA } } });
      await custom.createNamespacedCustomObject({
        ...SPC_GROUP,
        namespace: ns,
        plural: 'secretproviderclasses',
        body: {
          apiVersion: 'secrets-store.csi.x-k8s.io/v1',
          kind: 'SecretProviderClass',
          metadata: { name: SPC },
          spec: {
            provider: 'cofre',
            parameters: {
              cofreAddress: srv.url,
              roleName: role,
              audience: 'cofre',
              objects:
                '- objectName: db-password\n  secretPath: secret/data/web/db\n  secretKey: password\n' +
                '  filePermission: 0600\n' +
                '- objectName: db.json\n  secretPath: secret/data/web/db\n' +
                '- objectName: cert.der\n  secretPath: secret/data/web/tls\n  secretKey: cert\n  encoding: base64\n',
            },
            secretObjects: [
              { secretName: SYNCED_SECRET, type: 'Opaque', data: [{ objectName: 'db-password', key: 'password' }] },
            ],
          },
        },
      });
      await createPod(ns, 'web-0', SPC);
    }
    // A pod whose volume holds a database credential.
    await custom.createNamespacedCustomObject({
      ...SPC_GROUP,
      namespace: NS,
      plural: 'secretproviderclasses',
      body: {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name: DB_SPC },
        spec: {
          provider: 'cofre',
          parameters: {
            cofreAddress: srv.url,
            roleName: 'web',
            audience: 'cofre',
            objects: '- objectName: pg.json\n  secretPath: database/creds/app\n',
          },
        },
      },
    });
    await createPod(NS, 'db-0', DB_SPC);

    mkdirSync(providerDir, { recursive: true });
    provider = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'src/cli/main.ts', 'csi-provider', '--provider-dir', providerDir],
        ...['--kubeconfig', cluster.kubeconfigPath, '--pod-check-interval', '1'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    provider.stdout!.on('data', (d: Buffer) => (providerLog += d.toString()));
    provider.stderr!.on('data', (d: Buffer) => (providerLog += d.toString()));

    // The driver runs as its service account from deploy/, so the release's RBAC is what lets it work.
    const driverToken = await core.createNamespacedServiceAccountToken({
      namespace: 'kube-system',
      name: 'secrets-store-csi-driver',
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const driverKc = new k8s.KubeConfig();
    driverKc.loadFromOptions({
      clusters: [{ name: 'test', server: cluster.server, caData: Buffer.from(cluster.caCert).toString('base64') }],
      users: [{ name: 'secrets-store-csi-driver', token: driverToken.status!.token }],
      contexts: [{ name: 'test', cluster: 'test', user: 'secrets-store-csi-driver' }],
      currentContext: 'test',
    });
    const driverKubeconfig = path.join(dir, 'driver.kubeconfig');
    writeFileSync(driverKubeconfig, driverKc.exportConfig(), { mode: 0o600 });
    driver = spawn(
      build.binary,
      [
        ...[`--endpoint=unix://${endpoint}`, `--nodeid=${NODE}`, `--provider-volume=${providerDir}`],
        ...[`--additional-provider-volume-paths=${providerDir}`, '--metrics-addr=0'],
        ...['--enable-secret-rotation=true', `--rotation-poll-interval=${ROTATION_SECONDS}s`, '-v=2'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: driverKubeconfig } },
    );
    driver.stdout!.on('data', (d: Buffer) => (driverLog += d.toString()));
    driver.stderr!.on('data', (d: Buffer) => (driverLog += d.toString()));

    await poll(
      () => `the provider's and the driver's sockets (provider: ${providerLog}\ndriver: ${driverLog.slice(-3000)})`,
      async () => existsSync(path.join(providerDir, 'cofre.sock')) && existsSync(endpoint),
      30_000,
    );
    const csi = grpc.loadPackageDefinition(
      protoLoader.loadSync(build.csiProto, { keepCase: true, defaults: true, longs: Number, enums: String }),
    ).csi as grpc.GrpcObject;
    const v1 = csi.v1 as Record<string, grpc.ServiceClientConstructor>;
    identity = new v1.Identity!(`unix:${endpoint}`, grpc.credentials.createInsecure()) as unknown as CsiClient;
    node = new v1.Node!(`unix:${endpoint}`, grpc.credentials.createInsecure()) as unknown as CsiClient;
  });

  after(async () => {
    identity?.close();
    node?.close();
    // A failed test may leave a tmpfs mounted under dir; rmSync cannot remove a mount point.
    for (const target of volumeIds.keys()) if (mountAt(target)) spawnSync('umount', [target]);
    await Promise.all([stop(driver), stop(provider)]);
    await srv?.stop();
    await cluster?.stop();
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const stop = (child: ChildProcess | undefined) =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });

  const call = (client: CsiClient, method: string, req: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) =>
      client[method]!.call(client, req, (err, res) => (err ? reject(err) : resolve(res))),
    );

  // A pod bound to our node, as the scheduler would have, with the volume as a user writes it.
  const createPod = (ns: string, name: string, spc: string) =>
    core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          nodeName: NODE,
          serviceAccountName: SA,
          containers: [{ name: 'app', image: 'busybox', volumeMounts: [{ name: VOLUME, mountPath: '/secrets' }] }],
          volumes: [
            {
              name: VOLUME,
              csi: { driver: DRIVER_NAME, readOnly: true, volumeAttributes: { secretProviderClass: spc } },
            },
          ],
        },
      },
    });
  const pod = (ns: string, name = 'web-0') => core.readNamespacedPod({ namespace: ns, name });
  // Where the kubelet asks an ephemeral CSI volume to be published, which the driver's secret sync parses back
  // into the pod's uid and the volume's name.
  const targetPath = (uid: string) =>
    path.join(kubeletDir, 'pods', uid, 'volumes', 'kubernetes.io~csi', VOLUME, 'mount');

  /**
   * NodePublishVolume as the kubelet sends it for the pod's inline volume: the volume's attributes, the pod's
   * identity (the CSIDriver's podInfoOnMount) and a token per audience in its tokenRequests, minted by TokenRequest
   * and bound to the pod; a volume id from the pod and volume; read-only.
   */
  const publish = async (ns: string, name = 'web-0') => {
    const p = await pod(ns, name);
    const uid = p.metadata!.uid!;
    const csiDriver = await kc.makeApiClient(k8s.StorageV1Api).readCSIDriver({ name: DRIVER_NAME });
    const tokens: Record<string, { token: string; expirationTimestamp: string }> = {};
    for (const { audience, expirationSeconds } of csiDriver.spec.tokenRequests ?? []) {
      const res = await core.createNamespacedServiceAccountToken({
        namespace: ns,
        name: p.spec!.serviceAccountName!,
        body: {
          spec: {
            audiences: [audience],
            expirationSeconds: expirationSeconds ?? 3600,
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
          },
        },
      });
      tokens[audience] = {
        token: res.status!.token,
        expirationTimestamp: res.status!.expirationTimestamp.toISOString(),
      };
    }
    const volume = p.spec!.volumes!.find((v) => v.name === VOLUME)!;
    const target = targetPath(uid);
    // The kubelet makes the volume's directory; the driver makes `mount` in it (CSI spec, Kubernetes 1.20+).
    mkdirSync(path.dirname(target), { recursive: true });
    const volumeId = `csi-${createHash('sha256').update(`${uid}/${VOLUME}`).digest('hex')}`;
    volumeIds.set(target, volumeId);
    const context: Record<string, string> = {
      ...volume.csi!.volumeAttributes,
      ...(csiDriver.spec.podInfoOnMount
        ? {
            'csi.storage.k8s.io/pod.name': p.metadata!.name!,
            'csi.storage.k8s.io/pod.namespace': ns,
            'csi.storage.k8s.io/pod.uid': uid,
            'csi.storage.k8s.io/serviceAccount.name': p.spec!.serviceAccountName!,
            'csi.storage.k8s.io/ephemeral': 'true',
          }
        : {}),
      ...(Object.keys(tokens).length ? { 'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify(tokens) } : {}),
    };
    await call(node, 'NodePublishVolume', {
      volume_id: volumeId,
      target_path: target,
      volume_capability: { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
      readonly: true,
      volume_context: context,
    });
    return target;
  };

  const spcps = (ns: string, name = 'web-0', spc = SPC) =>
    custom.getNamespacedCustomObject({
      ...SPC_GROUP,
      namespace: ns,
      plural: 'secretproviderclasspodstatuses',
      name: `${name}-${ns}-${spc}`,
    }) as Promise<{
      metadata: { labels: Record<string, string> };
      status: { mounted: boolean; targetPath: string; objects: { id: string; version: string }[] };
    }>;
  const synced = async (ns: string) => {
    const s = await core.readNamespacedSecret({ namespace: ns, name: SYNCED_SECRET });
    return { value: Buffer.from(s.data!.password!, 'base64').toString(), labels: s.metadata!.labels ?? {} };
  };

  it('is the v1.6.0 release, and answers NodeGetInfo with its node id', async (t) => {
    t.diagnostic(build.notes);
    const info = await call(identity, 'GetPluginInfo', {});
    assert.equal(info.name, DRIVER_NAME);
    assert.equal(info.vendor_version, 'v1.6.0');
    assert.equal((await call(node, 'NodeGetInfo', {})).node_id, NODE);
  });

  let target: string;
  it('publishes the volume: a tmpfs with Cofre’s values and modes, a SecretProviderClassPodStatus and a synced Secret', async (t) => {
    const started = Date.now();
    // The driver's caches start with it; a kubelet retries a publish that fails meanwhile, and so does this.
    target = await poll(
      () => `a successful NodePublishVolume (driver log: ${driverLog.slice(-3000)})`,
      () => publish(NS),
      30_000,
      500,
    );
    t.diagnostic(`published in ${Date.now() - started} ms`);
    assert.equal(mountAt(target), 'tmpfs', `${target} is a tmpfs mount`);
    assert.equal(readFileSync(path.join(target, 'db-password'), 'utf8'), password);
    assert.equal(statSync(path.join(target, 'db-password')).mode & 0o777, 0o600, 'the object’s filePermission');
    assert.deepEqual(JSON.parse(readFileSync(path.join(target, 'db.json'), 'utf8')), { password, user: 'web' });
    assert.equal(statSync(path.join(target, 'db.json')).mode & 0o777, 0o644, 'the driver’s default permission');
    assert.deepEqual(readFileSync(path.join(target, 'cert.der')), cert, 'base64 in Cofre, bytes in the file');

    const status = await spcps(NS);
    assert.equal(status.status.mounted, true);
    assert.equal(status.status.targetPath, target);
    assert.equal(status.metadata.labels['internal.secrets-store.csi.k8s.io/node-name'], NODE);
    assert.deepEqual(
      status.status.objects.map((o) => o.id),
      ['cert.der', 'db-password', 'db.json'],
    );
    for (const o of status.status.objects) assert.match(o.version, /^[0-9a-f]{32}$/, 'an HMAC, not the value');

    const secret = await poll(
      () => `the synced Secret ${NS}/${SYNCED_SECRET} (driver log: ${driverLog.slice(-3000)})`,
      () => synced(NS),
      30_000,
      200,
    );
    assert.equal(secret.value, password);
    assert.equal(secret.labels['secrets-store.csi.k8s.io/managed'], 'true');
  });

  it('rotates: a KV write reaches the file and the synced Secret at the first republish after the interval', async (t) => {
    const before = (await spcps(NS)).status.objects;
    await writeOk(srv.api, 'secret/data/web/db', { data: { password: rotated, user: 'web' } });
    const written = Date.now();
    // The kubelet republishes the volume periodically (the CSIDriver's requiresRepublish); so does this, every
    // half second, as a kubelet might, and the driver calls the provider once the rotation interval has passed.
    await poll(
      () => `the rotated value in the file (driver log: ${driverLog.slice(-3000)})`,
      async () => (await publish(NS), readFileSync(path.join(target, 'db-password'), 'utf8') === rotated),
      (ROTATION_SECONDS + 10) * 1000,
      500,
    );
    t.diagnostic(`the file changed ${Date.now() - written} ms after the KV write (interval ${ROTATION_SECONDS} s)`);

    // Inside the interval that just began, a republish leaves the files alone.
    await writeOk(srv.api, 'secret/data/web/db', { data: { password: rotatedAgain, user: 'web' } });
    await publish(NS);
    assert.equal(
      readFileSync(path.join(target, 'db-password'), 'utf8'),
      rotated,
      'no provider call inside the interval',
    );

    await poll(
      'the second rotation in the file',
      async () => (await publish(NS), readFileSync(path.join(target, 'db-password'), 'utf8') === rotatedAgain),
      (ROTATION_SECONDS + 10) * 1000,
      500,
    );
    assert.equal(mountAt(target), 'tmpfs', 'still the same mount');
    const after = (await spcps(NS)).status.objects;
    const version = (objects: typeof after, id: string) => objects.find((o) => o.id === id)!.version;
    assert.notEqual(version(after, 'db-password'), version(before, 'db-password'));
    assert.equal(version(after, 'cert.der'), version(before, 'cert.der'), 'an unchanged object keeps its version');
    await poll(
      () => `the synced Secret to follow (driver log: ${driverLog.slice(-3000)})`,
      async () => (await synced(NS)).value === rotatedAgain,
      30_000,
      200,
    );
  });

  it('gives the driver’s error and no file when the role may not read the path', async () => {
    const err = await publish(OTHER_NS).then(
      () => assert.fail('the publish was allowed'),
      (e: grpc.ServiceError) => e,
    );
    assert.match(err.details, /failed to mount secrets store objects for pod other\/web-0/);
    assert.match(err.details, /object "db-password": GET secret\/data\/web\/db failed: 403: permission denied/);
    const denied = targetPath((await pod(OTHER_NS)).metadata!.uid!);
    assert.equal(mountAt(denied), undefined, 'the driver unmounted the tmpfs it made');
    assert.deepEqual(existsSync(denied) ? readdirSync(denied) : [], [], 'no file');
    await assert.rejects(spcps(OTHER_NS), (e: k8s.ApiException<unknown>) => e.code === 404);
    await assert.rejects(synced(OTHER_NS), (e: k8s.ApiException<unknown>) => e.code === 404);
  });

  it('holds a database credential for its pod across the driver’s republishes, and revokes it with the pod', async (t) => {
    const leases = async () => {
      const res = await srv.api.call('LIST', 'sys/leases/lookup/database/creds/app/');
      return res.status === 404 ? [] : (res.body.data.keys as string[]);
    };
    // The provider's log line for each Mount the driver makes for this pod.
    const mounts = () => providerLog.split('\n').filter((l) => /"msg":"mounted"/.test(l) && /"pod":"db-0"/.test(l));
    const dbTarget = await publish(NS, 'db-0');
    const file = path.join(dbTarget, 'pg.json');
    const first = readFileSync(file, 'utf8');
    const cred = JSON.parse(first) as { username: string; password: string };
    assert.ok(await canLogIn(postgres, db!, cred.username, cred.password), 'the credential logs in');
    const [lease] = await leases();
    assert.ok(lease);
    const versions = (await spcps(NS, 'db-0', DB_SPC)).status.objects;

    // A republish past the rotation interval: the driver calls the provider again, which returns what it holds for
    // the pod instead of issuing a new database user.
    const calls = await poll('the first Mount in the provider’s log', async () => mounts().length || undefined);
    await new Promise((r) => setTimeout(r, ROTATION_SECONDS * 1000 + 300));
    await publish(NS, 'db-0');
    await poll('the driver’s second Mount in the provider’s log', async () => mounts().length === calls + 1, 5_000);
    assert.equal(readFileSync(file, 'utf8'), first, 'the same credential');
    assert.deepEqual(await leases(), [lease], 'one lease for the pod');
    assert.deepEqual((await spcps(NS, 'db-0', DB_SPC)).status.objects, versions);

    // The pod goes (the kubelet would then unpublish): the provider revokes what it held, and PostgreSQL drops the
    // user.
    const deleted = Date.now();
    await core.deleteNamespacedPod({ namespace: NS, name: 'db-0', gracePeriodSeconds: 0 });
    await poll('the user leaves pg_roles', async () => !(await postgres.userExists(db!, cred.username)), 15_000, 200);
    t.diagnostic(`user dropped ${Date.now() - deleted} ms after the pod's deletion`);
    assert.deepEqual(await leases(), []);
    await call(node, 'NodeUnpublishVolume', { volume_id: volumeIds.get(dbTarget), target_path: dbTarget });
    assert.equal(mountAt(dbTarget), undefined);
    assert.ok(!providerLog.includes(cred.password) && !driverLog.includes(cred.password));
  });

  it('unpublishes: NodeUnpublishVolume unmounts the tmpfs and removes the target', async () => {
    await call(node, 'NodeUnpublishVolume', { volume_id: volumeIds.get(target), target_path: target });
    assert.equal(mountAt(target), undefined);
    assert.ok(!existsSync(target));
  });

  it('leaves no value and no token in the provider’s or the driver’s log', () => {
    for (const log of [providerLog, driverLog]) {
      for (const v of [password, rotated, rotatedAgain, cert.toString('base64')]) assert.ok(!log.includes(v));
      assert.doesNotMatch(log, /eyJ[A-Za-z0-9_-]{20,}/, 'no JWT');
    }
  });
});

// Cofre itself runs in the cluster from its image (issue 12): `helm install` of charts/cofre on a test control plane
// with the real node brings up the server, the operator and the injector, and the flows work through them only. The
// server is initialised and unsealed as a user would (`cofre operator init` / `unseal` through `kubectl exec`), then
// configured through its API on the host port; the operator syncs a CofreSecret into a Secret; the injector mutates
// annotated pods whose agents deliver a KV value as an in-memory file and as an environment variable. Logs hold only
// hashes of the value. Run it inside `flock /tmp/cofre-node-serial.lock` (one node per machine).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { COFRE_IMAGE, cofreImage, TEST_IMAGE } from '../scripts/build-image.js';
import { kubeTools, type KubeTools } from '../scripts/kube-tools.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { NODE_BRIDGE_ADDRESS, nodeLeftovers, startNode, type TestNode } from '../scripts/test-node.js';
import type { TestDatabase } from '../scripts/test-databases.js';
import { postgres } from './database-flavors.js';
import { freePort, runProcess } from './support.js';
import { poll } from './poll.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chart = path.join(repo, 'charts', 'cofre');
const RELEASE_NS = 'cofre';
const PG_ADMIN = 'cofre_admin';
const PG_ADMIN_PASSWORD = randomBytes(12).toString('hex');
const PG_TTL = 10;
const APP_FOLLOWS_FILE =
  'last=; trap "exit 0" TERM; while :; do c=$(cat /cofre/secrets/pg); ' +
  '[ "$c" != "$last" ] && echo "$c" && last=$c; sleep 0.2; done';
const APP_NS = 'app';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const run = runProcess;

/** Cofre's HTTP API over TLS, verified against the server's CA (never skipped). */
function cofreApi(url: string, ca: string) {
  let token = '';
  const agent = new https.Agent({ ca, keepAlive: false });
  const call = (method: string, p: string, body?: unknown): Promise<{ status: number; body: unknown }> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        `${url}/v1/${p}`,
        {
          method,
          agent,
          headers: {
            ...(token ? { 'x-vault-token': token } : {}),
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const ok = async (method: string, p: string, body?: unknown) => {
    const res = await call(method, p, body);
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  return { call, ok, setToken: (t: string) => (token = t), close: () => agent.destroy() };
}

/** poll(), and on a timeout also what `report` says of the state (pods, statuses) that the wait was for. */
async function waitFor<T>(
  what: string,
  report: () => Promise<string>,
  fn: () => Promise<T | undefined | false>,
  ms: number,
  every = 250,
): Promise<T> {
  try {
    return await poll(what, fn, ms, every);
  } catch (err) {
    const state = await report().catch((e: Error) => `(no report: ${e.message})`);
    throw new Error(`${(err as Error).message}\n${state}`);
  }
}

// The node joins only a control plane these tests start: never a cluster COFRE_TEST_KUBECONFIG names.
const skip = process.env.COFRE_TEST_KUBECONFIG
  ? 'COFRE_TEST_KUBECONFIG names an existing cluster; the test node joins only one these tests start'
  : false;

describe(
  'helm install of charts/cofre on the real node: server, operator and injector from the image',
  { skip },
  () => {
    let tools: KubeTools;
    let cluster: TestCluster;
    let node: TestNode | undefined;
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let installed = false;
    let api: ReturnType<typeof cofreApi>;
    let dir = '';
    const value = randomBytes(18).toString('base64url'); // the KV value delivered three ways; never printed
    let secondValue = ''; // the value after the rotation
    let db: TestDatabase | undefined;
    let serverPort = 0;
    const timings: string[] = [];
    const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      const result = await fn();
      timings.push(`${what} ${Date.now() - started} ms`);
      return result;
    };
    const kubectl = (args: string[], input?: string) =>
      run(tools.kubectl, ['--kubeconfig', cluster.kubeconfigPath, ...args], input);
    const helm = (...args: string[]) => run(tools.helm, [...args, '--kubeconfig', cluster.kubeconfigPath]);

    /** Every pod of a namespace with its phase and why its containers wait or ended: what a timeout reports. */
    const podsReport = async (namespace: string) =>
      (await core.listNamespacedPod({ namespace })).items
        .map((p) => {
          const states = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]
            .map(
              (c) => `${c.name}:${c.ready ? 'ready' : JSON.stringify(c.state?.waiting ?? c.state?.terminated ?? {})}`,
            )
            .join(' ');
          return `${p.metadata?.name} ${p.status?.phase} ${states}`;
        })
        .join('\n');

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'cofre-helm-node-'));
      tools = await kubeTools();
      cluster = await timed('control plane', () => startCluster({ name: 'helm-on-node' }));
      const archive = await timed('Cofre image (cached unless the sources changed)', () => cofreImage());
      node = await timed('node Ready', () => startNode(cluster, { images: [archive] }));
      kc = new k8s.KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      core = kc.makeApiClient(k8s.CoreV1Api);
      for (const name of [RELEASE_NS, APP_NS]) await core.createNamespace({ body: { metadata: { name } } });

      // The server's certificate, made by the user (the chart expects a kubernetes.io/tls Secret, e.g. cert-manager's):
      // self-signed, so it is its own CA, for the addresses it is reached at on this node.
      const san = `IP:127.0.0.1,IP:${NODE_BRIDGE_ADDRESS},DNS:cofre-server.${RELEASE_NS}.svc`;
      const gen = await run('openssl', [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
        ...['-subj', '/CN=cofre-server', '-addext', `subjectAltName=${san}`],
        ...['-keyout', path.join(dir, 'tls.key'), '-out', path.join(dir, 'tls.crt')],
      ]);
      assert.equal(gen.code, 0, gen.stderr);
      const cert = readFileSync(path.join(dir, 'tls.crt'), 'utf8');
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      await core.createNamespacedSecret({
        namespace: RELEASE_NS,
        body: {
          metadata: { name: 'cofre-tls' },
          type: 'kubernetes.io/tls',
          data: {
            'tls.crt': b64(cert),
            'tls.key': b64(readFileSync(path.join(dir, 'tls.key'), 'utf8')),
            'ca.crt': b64(cert),
          },
        },
      });

      // What makes the chart run on this node (docs/testing.md, "Cofre's chart on the node"): no kube-proxy and
      // no cluster DNS, so the server and the operator use the host network, the operator reaches the API server at
      // its loopback address, and the agents in pods on the bridge reach the server at the host's bridge address.
      // The injector stays on the pod network: the API server dials its Service's endpoint (aggregator routing).
      serverPort = await freePort();
      const apiServer = new URL(cluster.server);
      const apiEnv = [
        { name: 'KUBERNETES_SERVICE_HOST', value: apiServer.hostname },
        { name: 'KUBERNETES_SERVICE_PORT', value: apiServer.port },
      ];
      const values = {
        image: { pullPolicy: 'Never' },
        server: { hostNetwork: true, port: serverPort, persistence: { enabled: false } },
        operator: {
          hostNetwork: true,
          cofreAddress: `https://127.0.0.1:${serverPort}`,
          metrics: { port: await freePort() },
          extraEnv: apiEnv,
        },
        injector: {
          enabled: true,
          replicas: 1,
          cofreAddress: `https://${NODE_BRIDGE_ADDRESS}:${serverPort}`,
          cofreCaCertSecret: { name: 'cofre-tls' },
        },
      };
      writeFileSync(path.join(dir, 'values.json'), JSON.stringify(values, null, 2)); // JSON is YAML
    });

    after(async () => {
      api?.close();
      if (installed) await helm('uninstall', 'cofre', '-n', RELEASE_NS, '--wait');
      await node?.stop();
      await cluster?.stop();
      await db?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('helm install brings up the server, the operator and the injector from the image', async (t) => {
      const res = await timed('helm install', () =>
        helm('install', 'cofre', chart, '-n', RELEASE_NS, '-f', path.join(dir, 'values.json')),
      );
      assert.equal(res.code, 0, `helm install failed:\n${res.stderr}${res.stdout}`);
      installed = true;
      const pods = await timed('server, operator and injector Ready', () =>
        waitFor(
          "the release's pods Ready",
          () => podsReport(RELEASE_NS),
          async () => {
            const items = (await core.listNamespacedPod({ namespace: RELEASE_NS })).items;
            const ready = items.filter((p) =>
              p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
            );
            return ready.length === 3 && items.length === 3 ? items : undefined;
          },
          180_000,
          500,
        ),
      );
      const components = pods.map((p) => p.metadata?.labels?.['app.kubernetes.io/component']).sort();
      assert.deepEqual(components, ['injector', 'operator', 'server']);
      // The server and the operator on the host's network; the injector on the pod bridge, where the API server
      // reaches it at its Service's endpoint (no kube-proxy: a ClusterIP would lead off this machine).
      const byComponent = new Map(pods.map((p) => [p.metadata?.labels?.['app.kubernetes.io/component'], p]));
      assert.equal(byComponent.get('server')?.spec?.hostNetwork, true);
      assert.equal(byComponent.get('operator')?.spec?.hostNetwork, true);
      assert.notEqual(byComponent.get('injector')?.spec?.hostNetwork, true);
      assert.match(byComponent.get('injector')?.status?.podIP ?? '', /^10\.88\.100\.\d+$/);
      const data = byComponent.get('server')?.spec?.volumes?.find((v) => v.name === 'data');
      assert.ok(data?.emptyDir && !data.persistentVolumeClaim, 'the data on an emptyDir: no PersistentVolume here');
      for (const p of pods)
        assert.equal(p.spec?.containers[0]?.image, COFRE_IMAGE, "every component runs Cofre's image");
      t.diagnostic(timings.join('; '));
    });

    it('the server is initialised and unsealed as a user would: cofre operator init/unseal through kubectl exec', async () => {
      const exec = (args: string[], input?: string) =>
        kubectl(
          ['-n', RELEASE_NS, 'exec', ...(input ? ['-i'] : []), 'cofre-server-0', '-c', 'server', '--', ...args],
          input,
        );
      const flags = ['--address', `https://127.0.0.1:${serverPort}`, '--ca-cert', '/etc/cofre/tls/ca.crt'];
      const init = await exec([
        'cofre',
        'operator',
        'init',
        ...flags,
        '--key-shares',
        '1',
        '--key-threshold',
        '1',
        '-format=json',
      ]);
      assert.equal(init.code, 0, init.stderr);
      const { unseal_keys_b64: keys, root_token: rootToken } = JSON.parse(init.stdout) as {
        unseal_keys_b64: string[];
        root_token: string;
      };
      // The key share goes in on stdin, as `cofre operator unseal` reads it when no terminal is attached: never an
      // argument (a process's arguments are readable by others on the node).
      const unseal = await exec(['cofre', 'operator', 'unseal', ...flags], `${keys[0]}\n`);
      assert.equal(unseal.code, 0, unseal.stderr);
      assert.match(unseal.stdout, /Sealed\s+false/);

      // From here on, the API on the host port (hostNetwork), verified against the server's certificate.
      api = cofreApi(`https://127.0.0.1:${serverPort}`, readFileSync(path.join(dir, 'tls.crt'), 'utf8'));
      const health = await api.call('GET', 'sys/health');
      assert.equal(health.status, 200);
      api.setToken(rootToken);
      await api.ok('POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
      await api.ok('POST', 'secret/data/app/config', { data: { password: value } });
      await api.ok('PUT', 'sys/policies/acl/app-read', {
        policy: 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n',
      });
      // Kubernetes auth as in the chart's NOTES: the server reviews tokens with its own service account's token and CA
      // (system:auth-delegator); only the API server's address is this node's (no kube-proxy for kubernetes.default).
      await api.ok('POST', 'sys/auth/kubernetes', { type: 'kubernetes' });
      await api.ok('POST', 'auth/kubernetes/config', { kubernetes_host: cluster.server });
      await api.ok('POST', 'auth/kubernetes/role/app', {
        bound_service_account_names: ['app'],
        bound_service_account_namespaces: [APP_NS],
        audience: 'cofre',
        token_policies: ['app-read'],
        token_ttl: '10m',
      });
      await core.createNamespacedServiceAccount({ namespace: APP_NS, body: { metadata: { name: 'app' } } });
    });

    it('the operator syncs a CofreSecret from KV into a Secret, through a CofreConnection with Kubernetes auth', async (t) => {
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      const create = (plural: string, kind: string, name: string, spec: object) =>
        custom.createNamespacedCustomObject({
          group: 'cofre.dev',
          version: 'v1alpha1',
          namespace: APP_NS,
          plural,
          body: { apiVersion: 'cofre.dev/v1alpha1', kind, metadata: { name }, spec },
        });
      await create('cofreconnections', 'CofreConnection', 'cofre', {
        address: `https://127.0.0.1:${serverPort}`,
        caBundle: readFileSync(path.join(dir, 'tls.crt')).toString('base64'),
        auth: { kubernetes: { role: 'app', serviceAccountName: 'app' } },
      });
      await create('cofresecrets', 'CofreSecret', 'config', {
        connectionRef: { name: 'cofre' },
        source: { mount: 'secret', path: 'app/config' },
        target: { name: 'app-config' },
      });
      const secret = await timed('CofreSecret synced into a Secret', () =>
        waitFor(
          'the Secret app-config',
          async () => {
            const cs = await custom
              .getNamespacedCustomObject({
                group: 'cofre.dev',
                version: 'v1alpha1',
                namespace: APP_NS,
                plural: 'cofresecrets',
                name: 'config',
              })
              .catch((e: Error) => e.message);
            return `CofreSecret: ${JSON.stringify((cs as { status?: unknown }).status ?? cs)}`;
          },
          () => core.readNamespacedSecret({ namespace: APP_NS, name: 'app-config' }).catch(() => undefined),
          60_000,
          250,
        ),
      );
      assert.equal(sha256(Buffer.from(secret.data?.password ?? '', 'base64').toString()), sha256(value));
      t.diagnostic(timings.join('; '));
    });

    /** Creates an opted-in pod in APP_NS and returns its (app container's) log once it has Succeeded. */
    const injectedPod = async (name: string, annotations: Record<string, string>, script: string) => {
      await core.createNamespacedPod({
        namespace: APP_NS,
        body: {
          metadata: {
            name,
            labels: { 'cofre.dev/inject': 'true' },
            annotations: { 'cofre.dev/role': 'app', ...annotations },
          },
          spec: {
            serviceAccountName: 'app',
            restartPolicy: 'Never',
            containers: [{ name: 'app', image: TEST_IMAGE, imagePullPolicy: 'Never', command: ['sh', '-c', script] }],
          },
        },
      });
      await waitFor(
        `pod ${name} Succeeded`,
        () => podsReport(APP_NS),
        async () => {
          const p = await core.readNamespacedPod({ namespace: APP_NS, name });
          if (p.status?.phase === 'Failed') {
            const logs = await Promise.all(
              ['cofre-agent-init', 'app'].map((c) =>
                core.readNamespacedPodLog({ namespace: APP_NS, name, container: c }).catch((e: Error) => e.message),
              ),
            );
            assert.fail(`pod ${name} failed: ${JSON.stringify(p.status.containerStatuses)}\n${logs.join('\n')}`);
          }
          return p.status?.phase === 'Succeeded';
        },
        120_000,
        250,
      );
      const pod = await core.readNamespacedPod({ namespace: APP_NS, name });
      return { pod, log: await core.readNamespacedPodLog({ namespace: APP_NS, name, container: 'app' }) };
    };

    it('the injector mutates an annotated pod; its init agent renders the KV value into the memory volume', async (t) => {
      const { pod, log } = await timed('file pod Succeeded', () =>
        injectedPod(
          'files',
          {
            'cofre.dev/secret-config': 'secret/app/config',
            'cofre.dev/keys-config': 'password',
            'cofre.dev/format-config': 'raw',
          },
          // The hash of the file, the mount's kind, and proof that the app cannot write there.
          'sha256sum /cofre/secrets/config | cut -d" " -f1; grep " /cofre/secrets " /proc/mounts | cut -d" " -f3,4; ' +
            'touch /cofre/secrets/x 2>/dev/null && echo writable || echo read-only',
        ),
      );
      assert.equal(pod.metadata?.annotations?.['cofre.dev/status'], 'injected');
      assert.equal(pod.spec?.initContainers?.[0]?.name, 'cofre-agent-init');
      assert.equal(pod.spec?.initContainers?.[0]?.image, COFRE_IMAGE);
      const [hash, mount, writable] = log.trim().split('\n');
      assert.equal(hash, sha256(value), 'the app reads the KV value from the file');
      assert.match(mount ?? '', /^tmpfs ro,/, 'a memory volume, mounted read-only');
      assert.equal(writable, 'read-only');
      assert.doesNotMatch(JSON.stringify(pod), new RegExp(value), 'the value is nowhere in the pod');
      t.diagnostic(timings.join('; '));
    });

    it('an env-mode container runs through `cofre agent exec` and has the variable; its log holds only a hash', async (t) => {
      const { pod, log } = await timed('env pod Succeeded', () =>
        injectedPod(
          'env',
          { 'cofre.dev/secret-config': 'secret/app/config', 'cofre.dev/env-config': 'APP_PASSWORD=password' },
          'printf %s "$APP_PASSWORD" | sha256sum | cut -d" " -f1',
        ),
      );
      const app = pod.spec?.containers[0];
      assert.deepEqual(app?.command?.slice(-5), [
        'exec',
        '--',
        'sh',
        '-c',
        'printf %s "$APP_PASSWORD" | sha256sum | cut -d" " -f1',
      ]);
      assert.equal(log.trim(), sha256(value), 'the process had the value in its environment');
      assert.doesNotMatch(JSON.stringify(pod), new RegExp(value), 'the value is nowhere in the pod');
      const agentLog = await core.readNamespacedPodLog({
        namespace: APP_NS,
        name: 'env',
        container: 'cofre-agent-init',
      });
      assert.doesNotMatch(agentLog, new RegExp(value), 'nor in the agent log');
      t.diagnostic(timings.join('; '));
    });

    it('a Job with the native sidecar: a KV write re-renders its file within 2 s, the Job completes, the Secret follows', async (t) => {
      const batch = kc.makeApiClient(k8s.BatchV1Api);
      // The app prints the file's hash, waits until it changes, prints the new one and exits; the sidecar then stops.
      const script =
        'h() { sha256sum /cofre/secrets/config | cut -d" " -f1; }; first=$(h); echo "$first"; ' +
        'while [ "$(h)" = "$first" ]; do sleep 0.1; done; h';
      await batch.createNamespacedJob({
        namespace: APP_NS,
        body: {
          metadata: { name: 'rotate' },
          spec: {
            backoffLimit: 0,
            template: {
              metadata: {
                labels: { 'cofre.dev/inject': 'true' },
                annotations: {
                  'cofre.dev/role': 'app',
                  'cofre.dev/sidecar': 'true',
                  'cofre.dev/secret-config': 'secret/app/config',
                  'cofre.dev/keys-config': 'password',
                  'cofre.dev/format-config': 'raw',
                },
              },
              spec: {
                serviceAccountName: 'app',
                restartPolicy: 'Never',
                containers: [
                  { name: 'app', image: TEST_IMAGE, imagePullPolicy: 'Never', command: ['sh', '-c', script] },
                ],
              },
            },
          },
        },
      });
      const podName = await waitFor(
        "the Job's pod running with the first value rendered",
        () => podsReport(APP_NS),
        async () => {
          const pods = await core.listNamespacedPod({ namespace: APP_NS, labelSelector: 'job-name=rotate' });
          const p = pods.items[0];
          if (p?.status?.phase !== 'Running') return undefined;
          const log = await core.readNamespacedPodLog({ namespace: APP_NS, name: p.metadata!.name!, container: 'app' });
          return log.trim() === sha256(value) ? p.metadata!.name! : undefined;
        },
        120_000,
      );
      const pod = await core.readNamespacedPod({ namespace: APP_NS, name: podName });
      const sidecar = pod.spec?.initContainers?.find((c) => c.name === 'cofre-agent');
      assert.equal(sidecar?.restartPolicy, 'Always', 'the agent runs as a native sidecar');
      const rotated = randomBytes(18).toString('base64url');
      secondValue = rotated;
      const written = Date.now();
      await api.ok('POST', 'secret/data/app/config', { data: { password: rotated } });
      await waitFor(
        'the app to see the re-rendered file',
        () => podsReport(APP_NS),
        async () => {
          const log = await core.readNamespacedPodLog({ namespace: APP_NS, name: podName, container: 'app' });
          return log.trim().split('\n')[1] === sha256(rotated);
        },
        30_000,
        100,
      );
      const seen = Date.now() - written;
      assert.ok(seen < 2000, `the file was re-rendered ${seen} ms after the write (at most 2 s)`);
      await waitFor(
        'the Job Complete',
        () => podsReport(APP_NS),
        async () =>
          (await batch.readNamespacedJob({ namespace: APP_NS, name: 'rotate' })).status?.conditions?.some(
            (c) => c.type === 'Complete' && c.status === 'True',
          ),
        60_000,
      );
      // The operator's Secret follows the same write (its CofreSecret refreshes on the change stream).
      await waitFor(
        'the Secret app-config to hold the new value',
        () => podsReport(RELEASE_NS),
        async () => {
          const secret = await core.readNamespacedSecret({ namespace: APP_NS, name: 'app-config' });
          return sha256(Buffer.from(secret.data?.password ?? '', 'base64').toString()) === sha256(rotated);
        },
        30_000,
      );
      t.diagnostic(`KV write to the app seeing the re-rendered file: ${seen} ms (its log polled every 100 ms)`);
    });

    it('dynamic PostgreSQL credentials through the sidecar: renewed past their TTL, revoked when the pod goes', async (t) => {
      // A real PostgreSQL on this machine's loopback, which the server pod on the host network reaches.
      db = await postgres.start();
      for (const sql of postgres.setup(PG_ADMIN, PG_ADMIN_PASSWORD)) await db.query(sql);
      await api.ok('POST', 'sys/mounts/database', { type: 'database' });
      await api.ok('POST', 'database/config/main', {
        plugin_name: postgres.plugin,
        connection_url: postgres.connectionUrl(db),
        username: PG_ADMIN,
        password: PG_ADMIN_PASSWORD,
        allowed_roles: '*',
      });
      await api.ok('POST', 'database/roles/app', {
        db_name: 'main',
        creation_statements: postgres.creation,
        default_ttl: PG_TTL,
        max_ttl: 300,
      });
      await api.ok('PUT', 'sys/policies/acl/app-read', {
        policy:
          'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n' +
          'path "database/creds/app" {\n  capabilities = ["read"]\n}\n',
      });
      // The file holds only the user name, which the app prints; the password stays in the memory volume.
      await core.createNamespacedPod({
        namespace: APP_NS,
        body: {
          metadata: {
            name: 'pg',
            labels: { 'cofre.dev/inject': 'true' },
            annotations: {
              'cofre.dev/role': 'app',
              'cofre.dev/sidecar': 'true',
              'cofre.dev/creds-pg': 'database/creds/app',
              'cofre.dev/template-pg': '{{ .Data.username }}',
            },
          },
          spec: {
            serviceAccountName: 'app',
            terminationGracePeriodSeconds: 10,
            containers: [
              {
                name: 'app',
                image: TEST_IMAGE,
                imagePullPolicy: 'Never',
                // Prints the user name each time the file changes (the init container renders the credential, which
                // the sidecar takes over); leaves at SIGTERM, as a PID 1 without a handler would not.
                command: ['sh', '-c', APP_FOLLOWS_FILE],
              },
            ],
          },
        },
      });
      const userNow = async () =>
        (await core.readNamespacedPodLog({ namespace: APP_NS, name: 'pg', container: 'app' })).trim().split('\n').pop();
      await waitFor(
        'the pod running with a PostgreSQL user name',
        () => podsReport(APP_NS),
        async () => {
          const p = await core.readNamespacedPod({ namespace: APP_NS, name: 'pg' });
          return p.status?.phase === 'Running' && Boolean(await userNow());
        },
        120_000,
      );
      const issued = Date.now();
      const expiries = async () => {
        const list = (await api.ok('LIST', 'sys/leases/lookup/database/creds/app/')) as { data: { keys: string[] } };
        const out = new Map<string, number>();
        for (const key of list.data.keys) {
          const id = `database/creds/app/${key}`;
          const lease = (await api.ok('PUT', 'sys/leases/lookup', { lease_id: id })) as {
            data: { expire_time: string };
          };
          out.set(id, Date.parse(lease.data.expire_time));
        }
        return out;
      };
      // The sidecar renews the lease before the TTL runs out (at about two thirds of it): its expiry moves on, and
      // the role outlives its first one. One lease: the sidecar took over the init container's credential.
      const before = await expiries();
      assert.equal(before.size, 1, 'one lease for the pod');
      const [leaseId, first] = await waitFor(
        'a lease renewed',
        () => podsReport(APP_NS),
        async () => {
          for (const [id, expiry] of await expiries())
            if (before.has(id) && expiry > before.get(id)!) return [id, before.get(id)!] as const;
          return undefined;
        },
        PG_TTL * 2000,
      );
      await new Promise((r) => setTimeout(r, Math.max(0, first + 500 - Date.now())));
      const user = (await userNow())!;
      assert.ok(await postgres.userExists(db!, user), `${user} outlived its first expiry: the lease was renewed`);
      // Deleted, the pod's sidecar revokes its token and with it the lease: the role goes before the lease would
      // have run out by itself.
      const deleted = Date.now();
      const runsOut = (await expiries()).get(leaseId)!;
      await core.deleteNamespacedPod({ namespace: APP_NS, name: 'pg' });
      await waitFor(
        `${user} gone from pg_roles after the pod's deletion`,
        () => podsReport(APP_NS),
        async () => !(await postgres.userExists(db!, user)),
        30_000,
      );
      const gone = Date.now();
      assert.ok(gone < runsOut, `the role went ${gone - runsOut} ms after its lease would have run out: not revoked`);
      t.diagnostic(
        `credential kept ${deleted - issued} ms with a ${PG_TTL} s TTL; revoked ${gone - deleted} ms after the ` +
          `delete, ${runsOut - gone} ms before the lease would have run out`,
      );
    });

    it("no value in the components' logs, the agents' logs or the Events", async () => {
      const logsOf = async (namespace: string) => {
        const out: string[] = [];
        for (const p of (await core.listNamespacedPod({ namespace })).items)
          for (const c of [...(p.spec?.initContainers ?? []), ...p.spec!.containers])
            out.push(
              await core
                .readNamespacedPodLog({ namespace, name: p.metadata!.name!, container: c.name })
                .catch(() => ''),
            );
        return out.join('\n');
      };
      const releaseLogs = await logsOf(RELEASE_NS);
      // The components did log (a check of empty logs would prove nothing): the injector one line per admission.
      assert.match(releaseLogs, /injected/);
      const events = JSON.stringify([
        ...(await core.listNamespacedEvent({ namespace: RELEASE_NS })).items,
        ...(await core.listNamespacedEvent({ namespace: APP_NS })).items,
      ]);
      for (const [where, text] of [
        ['release pods', releaseLogs],
        ['app pods', await logsOf(APP_NS)],
        ['Events', events],
      ] as const)
        for (const v of [value, secondValue, PG_ADMIN_PASSWORD].filter(Boolean))
          assert.doesNotMatch(text, new RegExp(v), `a value is in the ${where}`);
    });

    it('helm uninstall removes the release; the node then tears down without a trace', async (t) => {
      const res = await timed('helm uninstall', () => helm('uninstall', 'cofre', '-n', RELEASE_NS, '--wait'));
      assert.equal(res.code, 0, res.stderr);
      installed = false;
      const hooks = await kc.makeApiClient(k8s.AdmissionregistrationV1Api).listMutatingWebhookConfiguration();
      assert.deepEqual(
        hooks.items.map((h) => h.metadata?.name),
        [],
        'the webhook is gone with the release',
      );
      await timed('node teardown', () => node!.stop());
      node = undefined;
      assert.deepEqual(nodeLeftovers(), []);
      t.diagnostic(timings.join('; '));
    });
  },
);

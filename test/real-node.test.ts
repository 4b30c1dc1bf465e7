// Proves the real test node (scripts/test-node.ts) that in-pod delivery (issue 12) stands on: pods really run, from
// images built on this machine, including Cofre's own; and the node goes away without a trace.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { COFRE_IMAGE, cofreImage, TEST_IMAGE } from '../scripts/build-image.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { NODE_DIR, NODE_LOCK, NODE_NAME, nodeLeftovers, startNode, type TestNode } from '../scripts/test-node.js';
import { execInPod } from './kube-support.js';

const execFileP = promisify(execFile);
const ns = 'node-test';
const image = { image: TEST_IMAGE, imagePullPolicy: 'Never' };

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = ` (last: ${(e as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// The node joins only a control plane these tests start: never a cluster COFRE_TEST_KUBECONFIG names.
const skip = process.env.COFRE_TEST_KUBECONFIG
  ? 'COFRE_TEST_KUBECONFIG names an existing cluster; the test node joins only one these tests start'
  : false;

describe('a real node: kubelet + containerd + runc joined to the test control plane', { skip }, () => {
  let cluster: TestCluster;
  let node: TestNode | undefined;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  const timings: string[] = [];
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const value = await fn();
    timings.push(`${what} ${Date.now() - started} ms`);
    return value;
  };

  before(async () => {
    cluster = await timed('control plane', () => startCluster({ name: 'real-node' }));
    const archive = await timed('Cofre image (cached unless the sources changed)', () => cofreImage());
    node = await timed('node Ready', () => startNode(cluster, { images: [archive] }));
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    // The controller manager creates each namespace's default service account; pods cannot start before it.
    await waitFor('the default service account', 30_000, () =>
      core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }).then(() => true),
    );
  });
  after(async () => {
    await node?.stop();
    await cluster?.stop();
  });

  const phase = (name: string, want: string[]) =>
    waitFor(`pod ${name} in ${want.join('/')}`, 120_000, async () => {
      const p = await core.readNamespacedPod({ namespace: ns, name });
      const now = p.status?.phase ?? '';
      if (now === 'Failed' && !want.includes('Failed'))
        throw new Error(`pod ${name} failed: ${JSON.stringify(p.status?.containerStatuses)}`);
      return want.includes(now) ? p : undefined;
    });
  const logs = (name: string, container?: string) =>
    core.readNamespacedPodLog({ namespace: ns, name, ...(container ? { container } : {}) });

  it('runs a pod whose init container writes into a memory emptyDir (a tmpfs), with env vars and logs', async (t) => {
    await timed('pod with init container Succeeded', async () => {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 't1' },
          spec: {
            restartPolicy: 'Never',
            initContainers: [
              {
                name: 'writer',
                ...image,
                command: ['sh', '-c', 'echo from-the-init-container > /scratch/f.txt'],
                volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
              },
            ],
            containers: [
              {
                name: 'main',
                ...image,
                env: [{ name: 'GREETING', value: 'hello-env' }],
                command: [
                  'sh',
                  '-c',
                  'echo "GREETING=$GREETING"; cat /scratch/f.txt; grep " /scratch " /proc/mounts; ip route',
                ],
                volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
              },
            ],
            volumes: [{ name: 'scratch', emptyDir: { medium: 'Memory' } }],
          },
        },
      });
      const pod = await phase('t1', ['Succeeded']);
      assert.equal(pod.spec?.nodeName, NODE_NAME, 'the scheduler placed it on our node');
    });
    const [greeting, content, mount, ...routes] = (await logs('t1', 'main')).trim().split('\n');
    assert.equal(greeting, 'GREETING=hello-env');
    assert.equal(content, 'from-the-init-container');
    assert.match(mount ?? '', /^tmpfs \/scratch tmpfs /, 'medium: Memory is a tmpfs inside the pod');
    // A pod on the bridge has a route to its own subnet (other pods, the host's bridge address) and no default.
    assert.deepEqual(
      routes.map((r) => r.split(' ')[0]),
      ['10.88.100.0/24'],
      routes.join('\n'),
    );
    t.diagnostic(timings.join('; '));
  });

  const execIn = (pod: string, command: string[]) => execInPod(kc, ns, pod, 'main', command);

  it('rolls a Deployment out to a new pod when its template changes, and removes the old one', async (t) => {
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const podOf = (version: string) =>
      waitFor(`a running pod of version ${version}`, 120_000, async () => {
        const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
        const running = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
        if (running.length !== 1 || pods.items.length !== 1) return undefined;
        const env = running[0]!.spec?.containers[0]?.env?.find((e) => e.name === 'VERSION')?.value;
        return env === version ? running[0]!.metadata!.name! : undefined;
      });
    const template = (version: string): k8s.V1PodTemplateSpec => ({
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'main',
            ...image,
            env: [{ name: 'VERSION', value: version }],
            command: ['sh', '-c', 'echo "VERSION=$VERSION"; exec sleep 3600'],
          },
        ],
      },
    });
    const first = await timed('Deployment v1 rolled out', async () => {
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: { name: 'web' },
          spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: template('v1') },
        },
      });
      return podOf('v1');
    });
    assert.match(await logs(first), /^VERSION=v1$/m);
    const second = await timed('Deployment v2 rolled out, v1 pod gone', async () => {
      const d = await apps.readNamespacedDeployment({ namespace: ns, name: 'web' });
      d.spec!.template = template('v2');
      await apps.replaceNamespacedDeployment({ namespace: ns, name: 'web', body: d });
      return podOf('v2');
    });
    assert.notEqual(second, first);
    assert.match(await logs(second), /^VERSION=v2$/m);
    // exec goes from the API server to the kubelet (at the node's name) and into the running container.
    assert.equal(await execIn(second, ['sh', '-c', 'echo "exec sees VERSION=$VERSION"']), 'exec sees VERSION=v2\n');
    t.diagnostic(timings.join('; '));
  });

  it('projects a service-account token with an audience that TokenReview accepts for that audience only', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'token' },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: 'app',
          containers: [
            {
              name: 'main',
              ...image,
              command: ['cat', '/var/run/secrets/tokens/vault-token'],
              volumeMounts: [{ name: 'tok', mountPath: '/var/run/secrets/tokens' }],
            },
          ],
          volumes: [
            {
              name: 'tok',
              projected: {
                sources: [{ serviceAccountToken: { audience: 'vault', expirationSeconds: 600, path: 'vault-token' } }],
              },
            },
          ],
        },
      },
    });
    await phase('token', ['Succeeded']);
    const token = (await logs('token')).trim();
    const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
    const review = await authn.createTokenReview({ body: { spec: { token, audiences: ['vault'] } } });
    assert.equal(review.status?.authenticated, true, JSON.stringify(review.status?.error));
    assert.equal(review.status?.user?.username, `system:serviceaccount:${ns}:app`);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
      'kubernetes.io'?: { pod?: { name?: string }; node?: { name?: string } };
    };
    assert.equal(claims['kubernetes.io']?.pod?.name, 'token', 'the token is bound to the pod');
    assert.equal(claims['kubernetes.io']?.node?.name, NODE_NAME);
    const other = await authn.createTokenReview({ body: { spec: { token, audiences: ['not-vault'] } } });
    assert.notEqual(other.status?.authenticated, true, 'a token for "vault" is refused for another audience');
  });

  it("runs Cofre's own image: node 24 and `cofre` on PATH, and `cofre server -dev` on hostNetwork", async (t) => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'cofre-version' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: COFRE_IMAGE,
              imagePullPolicy: 'Never',
              command: [
                'sh',
                '-c',
                'node --version; id -u; command -v cofre; cofre --help >/dev/null && echo help-ok; stat -c %u "$PWD"',
              ],
            },
          ],
        },
      },
    });
    await phase('cofre-version', ['Succeeded']);
    const [version, uid, where, help, workdirOwner] = (await logs('cofre-version')).trim().split('\n');
    assert.match(version ?? '', /^v24\./);
    assert.equal(uid, '1000', 'the image runs as a non-root user');
    assert.equal(where, '/usr/local/bin/cofre');
    assert.equal(help, 'help-ok');
    assert.equal(workdirOwner, '1000', "the working directory, /home/node, is the user's");

    // The in-pod agent copies Node.js out of the image into a volume: the binary, its loader and libraries suffice
    // to run it in a container whose image has no Node.js (the busybox test image).
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'node-copied' },
        spec: {
          restartPolicy: 'Never',
          initContainers: [
            {
              name: 'copy',
              image: COFRE_IMAGE,
              imagePullPolicy: 'Never',
              command: [
                'sh',
                '-c',
                'cp -L /usr/local/bin/node /lib64/ld-linux-x86-64.so.2 /usr/lib/x86_64-linux-gnu/*.so* /shared/',
              ],
              volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
            },
          ],
          containers: [
            {
              name: 'main',
              ...image,
              command: ['/shared/ld-linux-x86-64.so.2', '--library-path', '/shared', '/shared/node', '--version'],
              volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
            },
          ],
          volumes: [{ name: 'shared', emptyDir: { medium: 'Memory' } }],
        },
      },
    });
    await phase('node-copied', ['Succeeded']);
    assert.equal((await logs('node-copied')).trim(), version);

    // A pod reaches the API server as in-cluster clients do, with its service-account token and the cluster's CA,
    // on the host's network at the address the networking rules give (there is no kube-proxy for 10.0.0.1).
    const api = new URL(cluster.server);
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
    const script = `const fs = require('fs');
const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = process.env;
const headers = { authorization: 'Bearer ' + fs.readFileSync('${sa}/token', 'utf8') };
require('https').get({ host, port, path: '/version', ca: fs.readFileSync('${sa}/ca.crt'), headers }, (res) => {
  let body = '';
  res.on('data', (d) => (body += d)).on('end', () => console.log(res.statusCode, JSON.parse(body).gitVersion));
}).on('error', (e) => { console.log('error', e.message); process.exitCode = 1; });`;
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'api-from-pod' },
        spec: {
          restartPolicy: 'Never',
          hostNetwork: true,
          containers: [
            {
              name: 'main',
              image: COFRE_IMAGE,
              imagePullPolicy: 'Never',
              env: [
                { name: 'KUBERNETES_SERVICE_HOST', value: api.hostname },
                { name: 'KUBERNETES_SERVICE_PORT', value: api.port },
              ],
              command: ['node', '-e', script],
            },
          ],
        },
      },
    });
    await phase('api-from-pod', ['Succeeded']);
    assert.match((await logs('api-from-pod')).trim(), /^200 v1\.\d+\.\d+$/);

    // Pods reach this machine's loopback only on the host's network: the server listens there and the test calls it.
    const port = await freePort();
    await timed('Cofre server pod answering sys/health', async () => {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'cofre' },
          spec: {
            hostNetwork: true,
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'server',
                image: COFRE_IMAGE,
                imagePullPolicy: 'Never',
                // On SQLite, so the image's better-sqlite3 addon must load under the image's Node.js.
                command: ['cofre', 'server', '-dev', '-dev-listen-address', `127.0.0.1:${port}`, '-data-dir', '/data'],
                volumeMounts: [{ name: 'data', mountPath: '/data' }],
              },
            ],
            volumes: [{ name: 'data', emptyDir: {} }],
          },
        },
      });
      const health = await waitFor('sys/health from the pod', 60_000, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/sys/health`);
        return res.status === 200 ? ((await res.json()) as { initialized: boolean; sealed: boolean }) : undefined;
      });
      assert.equal(health.initialized, true);
      assert.equal(health.sealed, false);
    });
    // The kubelet reports the container as started a moment after it is; the logs are there from then on. The
    // server says where it stores (never a value).
    await waitFor("the server's log", 30_000, async () =>
      /SQLite in \/data/.test(await logs('cofre')) ? true : undefined,
    );
    // It was the pod that answered: once the pod is gone, nothing does.
    await core.deleteNamespacedPod({ namespace: ns, name: 'cofre' });
    await waitFor('the server to stop with its pod', 30_000, () =>
      fetch(`http://127.0.0.1:${port}/v1/sys/health`).then(
        () => undefined,
        () => true,
      ),
    );
    t.diagnostic(timings.join('; '));
  });

  it("allows one node per machine and never forwards pod traffic off it, nor sends to the Services' range", async () => {
    await assert.rejects(startNode(cluster), /a test node is already running on this machine/);
    const n = await core.readNode({ name: NODE_NAME });
    assert.equal(n.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', 'the first node is untouched');
    for (const ipt of ['iptables', 'ip6tables'])
      await execFileP(ipt, ['-C', 'FORWARD', '-i', 'cofre0', '!', '-o', 'cofre0', '-j', 'DROP']);
    // Nor does this machine send anything to the Services' range (a host-network pod's default 10.0.0.1).
    await execFileP('iptables', ['-C', 'OUTPUT', '-d', '10.0.0.0/24', '-j', 'REJECT']);
  });

  it('tears down without a trace: no processes, mounts, cgroups, iptables chains or directories', async (t) => {
    assert.ok(nodeLeftovers().length > 0, 'a running node is seen by nodeLeftovers (else the check below is empty)');
    await timed('teardown', () => node!.stop());
    node = undefined;
    assert.deepEqual(nodeLeftovers(), []);
    const ps = (await execFileP('ps', ['-eo', 'args'])).stdout;
    assert.doesNotMatch(ps, new RegExp(`kubelet .*${NODE_DIR}|containerd --config ${NODE_DIR}`));
    t.diagnostic(timings.join('; '));
  });
});

describe('a node whose test process dies', { skip }, () => {
  it('is torn down by itself, leaving nothing behind', async (t) => {
    // A test process that starts a control plane and a node, then is killed with SIGKILL: no after() hook runs.
    const scripts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'scripts');
    const dir = mkdtempSync(path.join(tmpdir(), 'cofre-node-crash-'));
    const file = path.join(dir, 'crash.mts');
    writeFileSync(
      file,
      `import { startCluster } from ${JSON.stringify(pathToFileURL(path.join(scripts, 'test-cluster.ts')).href)};
import { startNode } from ${JSON.stringify(pathToFileURL(path.join(scripts, 'test-node.ts')).href)};
const cluster = await startCluster({ name: 'node-crash' });
await startNode(cluster);
console.log('ready');
setInterval(() => {}, 1000);
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: path.join(scripts, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`the crashing process exited early (${code})`)));
      });
      assert.ok(existsSync(NODE_LOCK) && nodeLeftovers().length > 0, 'the node is up');
      const killed = Date.now();
      child.kill('SIGKILL');
      await waitFor('the node to be torn down after its process died', 60_000, async () =>
        existsSync(NODE_LOCK) ? undefined : true,
      );
      assert.deepEqual(nodeLeftovers(), []);
      t.diagnostic(`torn down ${Date.now() - killed} ms after the SIGKILL`);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

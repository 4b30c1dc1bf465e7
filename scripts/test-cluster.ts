// Real Kubernetes control planes (etcd + kube-apiserver [+ kube-controller-manager]) for tests and for hand use.
// DESIGN.md "Test environment": integration tests run against a real API server, never a fake. Several clusters can
// run at once, each on its own loopback ports: that is how a test stands up "several clusters".
//
//   import { startCluster } from '../scripts/test-cluster.js';   // in a test; call stop() in an after() hook
//   node --import tsx scripts/test-cluster.ts up [--name NAME] [--no-controller-manager]   // prints a kubeconfig path
//   node --import tsx scripts/test-cluster.ts down [--name NAME]                           // stops what `up` started
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync } from 'node:fs';
import { readFileSync, realpathSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export interface TestCluster {
  name: string;
  /** Holds certificates, keys, etcd data, logs (NAME.log), pids and the kubeconfig; removed by stop(). */
  dir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** PEM of the CA that signed the API server's serving certificate: clients verify TLS with it. */
  caCert: string;
  kubeconfigPath: string;
  /** Bearer token of a member of system:masters. */
  adminToken: string;
  /** The `iss` of the service-account tokens this cluster issues. */
  serviceAccountIssuer: string;
  /**
   * http://127.0.0.1:PORT of the cluster's etcd (no TLS, no auth), for tests that read what the API server stored;
   * absent for an existing cluster (COFRE_TEST_KUBECONFIG).
   */
  etcdUrl?: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  name?: string;
  /** Also start kube-controller-manager, so Deployments get ReplicaSets and roll. Default true. */
  controllerManager?: boolean;
  /** More kube-apiserver flags, e.g. `--encryption-provider-config` (the KMS plugin's test). */
  apiserverArgs?: string[];
}

/** The Services' ClusterIP range of every test control plane; nothing on this machine routes it (no kube-proxy). */
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a fresh cluster, or wraps the existing one COFRE_TEST_KUBECONFIG points at (then stop() does nothing). */
export async function startCluster(opts: StartOptions = {}): Promise<TestCluster> {
  const external = process.env.COFRE_TEST_KUBECONFIG;
  if (external) return useExisting(external);
  const name = opts.name ?? 'cofre-test';
  const dir = mkdtempSync(path.join(tmpdir(), `cofre-cluster-${name.replace(/[^\w.-]/g, '_')}-`));
  return launch(name, dir, opts.controllerManager ?? true, false, opts.apiserverArgs ?? []);
}

let binDir: Promise<string> | undefined;

/** Runs scripts/kube-binaries.sh once per process; its progress (a first build takes minutes) goes to our stderr. */
export function kubeBinaries(): Promise<string> {
  binDir ??= new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [path.join(here, 'kube-binaries.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && out.trim()) return resolve(out.trim());
      const why =
        `scripts/kube-binaries.sh failed (exit ${code}; its messages are above). It builds kube-apiserver, etcd ` +
        `and the node's kubelet with the Go toolchain (https://go.dev/dl/). Or set KUBEBUILDER_ASSETS (envtest ` +
        `binaries) or COFRE_TEST_KUBECONFIG (an existing cluster).`;
      reject(new Error(why));
    });
  });
  return binDir;
}

// ---------------------------------------------------------------------------------------------------------------
// Starting a cluster. `detached` (the CLI's `up`) lets the processes outlive this one.

async function launch(
  name: string,
  dir: string,
  withKcm: boolean,
  detached: boolean,
  apiserverArgs: string[] = [],
): Promise<TestCluster> {
  const procs: ChildProcess[] = [];
  const stop = () => stopAll(procs, dir);
  const f = (p: string) => path.join(dir, p);
  try {
    const bin = await kubeBinaries();
    if (withKcm && !existsSync(path.join(bin, 'kube-controller-manager')))
      throw new Error(
        `${bin} holds no kube-controller-manager (envtest's KUBEBUILDER_ASSETS ship none): unset KUBEBUILDER_ASSETS ` +
          `so that scripts/kube-binaries.sh builds one, or pass { controllerManager: false }`,
      );
    if (!detached) guardChildren(dir);
    const [etcdPort, peerPort, apiPort] = await freePorts(3);
    const server = `https://127.0.0.1:${apiPort}`;

    // Our own CA and serving certificate, so that clients verify TLS against caCert.
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30'];
    await openssl(dir, ['req', '-x509', ...ec, '-subj', '/CN=cofre-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt']);
    await openssl(dir, [
      ...['req', '-x509', ...ec, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-subj', '/CN=kube-apiserver'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'extendedKeyUsage=serverAuth'],
      ...['-keyout', 'apiserver.key', '-out', 'apiserver.crt'],
    ]);
    // The key pair that signs (private) and verifies (public) service-account tokens.
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(f('sa.key'), sa.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
    await writeFile(f('sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
    // A static token in system:masters: the admin, for tests and for the controller manager.
    const adminToken = randomBytes(24).toString('hex');
    await writeFile(f('tokens.csv'), `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const caCert = await readFile(f('ca.crt'), 'utf8');
    const kubeconfigPath = f('kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig(name, server, caCert, adminToken), { mode: 0o600 });

    const etcd = `http://127.0.0.1:${etcdPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    procs.push(
      run(dir, path.join(bin, 'etcd'), detached, [
        ...['--name', 'cofre', '--data-dir', f('etcd'), '--listen-client-urls', etcd, '--advertise-client-urls', etcd],
        ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `cofre=${peer}`],
      ]),
    );
    // The issuer is the server's own URL: unique per cluster, so tests can tell the clusters' tokens apart.
    const serviceAccountIssuer = server;
    procs.push(
      run(dir, path.join(bin, 'kube-apiserver'), detached, [
        ...['--etcd-servers', etcd, '--secure-port', String(apiPort)],
        ...['--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1'],
        ...['--tls-cert-file', f('apiserver.crt'), '--tls-private-key-file', f('apiserver.key')],
        ...['--service-account-issuer', serviceAccountIssuer, '--service-account-key-file', f('sa.pub')],
        ...['--service-account-signing-key-file', f('sa.key'), '--token-auth-file', f('tokens.csv')],
        // Audiences the API server itself accepts: its issuer (the default for tokens requested without one) and
        // the in-cluster names that managed clusters (EKS, GKE) accept, which Vault-style reviewer tokens often use.
        ...[
          '--api-audiences',
          [server, 'https://kubernetes.default.svc', 'https://kubernetes.default.svc.cluster.local'].join(','),
        ],
        ...[
          '--authorization-mode',
          'RBAC',
          '--service-cluster-ip-range',
          SERVICE_CLUSTER_IP_RANGE,
          '--allow-privileged',
        ],
        // Webhooks and aggregated APIs named by a Service are dialled at one of its ready endpoints (a pod address)
        // rather than its ClusterIP: the test node has no kube-proxy, so a ClusterIP leads nowhere, while the pod
        // network is reachable from this machine. The chart's webhook keeps its production shape (a Service).
        '--enable-aggregator-routing=true',
        ...apiserverArgs,
      ]),
    );
    await waitReady(server, caCert, procs, dir);
    if (withKcm)
      procs.push(
        run(dir, path.join(bin, 'kube-controller-manager'), detached, [
          ...['--kubeconfig', kubeconfigPath, '--authentication-kubeconfig', kubeconfigPath],
          ...['--authorization-kubeconfig', kubeconfigPath, '--leader-elect=false', '--secure-port', '0'],
          ...['--service-account-private-key-file', f('sa.key'), '--root-ca-file', f('ca.crt'), '--controllers', '*'],
        ]),
      );
    return { name, dir, server, caCert, kubeconfigPath, adminToken, serviceAccountIssuer, etcdUrl: etcd, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  await execFileP('openssl', args, { cwd }).catch((e: Error) => {
    throw new Error(`openssl failed (install it with 'apt-get install -y openssl'): ${e.message}`);
  });
}

/** Spawns a component with its output in DIR/NAME.log (a file, not a pipe, so nothing has to drain it). */
function run(dir: string, file: string, detached: boolean, args: string[]): ChildProcess {
  const log = openSync(path.join(dir, `${path.basename(file)}.log`), 'a');
  const child = spawn(file, args, { cwd: dir, detached, stdio: ['ignore', log, log] });
  closeSync(log);
  child.on('error', () => {}); // a failed spawn shows up as an early exit in waitReady
  if (child.pid !== undefined) appendFileSync(path.join(dir, 'pids'), `${child.pid}\n`);
  if (detached) child.unref();
  else {
    live.add(child);
    child.on('exit', () => live.delete(child));
  }
  return child;
}

async function waitReady(server: string, ca: string, procs: ChildProcess[], dir: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode})\n${logTails(dir)}`);
    try {
      const res = await get(`${server}/readyz`, ca);
      if (res.status === 200) return;
      last = `${res.status} ${res.body}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`kube-apiserver not ready after ${READY_TIMEOUT_MS / 1000} s (last: ${last})\n${logTails(dir)}`);
}

function logTails(dir: string): string {
  return ['etcd', 'kube-apiserver', 'kube-controller-manager']
    .filter((n) => existsSync(path.join(dir, `${n}.log`)))
    .map((n) => `--- end of ${n}.log ---\n${readFileSync(path.join(dir, `${n}.log`), 'utf8').slice(-4000)}`)
    .join('\n');
}

/** A GET that verifies the server's certificate against `ca` (never skips verification). */
export function get(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    const req = https.get(url, { ca, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Holds all n ports open until every one is known, so one call never hands out the same port twice. */
async function freePorts(n: number): Promise<number[]> {
  const listen = () =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject).listen(0, '127.0.0.1', () => resolve(s));
    });
  const servers = await Promise.all(Array.from({ length: n }, listen));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function kubeconfig(name: string, server: string, caCert: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: ${name}
    cluster:
      server: ${server}
      certificate-authority-data: ${Buffer.from(caCert).toString('base64')}
users:
  - name: ${name}-admin
    user:
      token: ${token}
contexts:
  - name: ${name}
    context:
      cluster: ${name}
      user: ${name}-admin
current-context: ${name}
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Stopping, and never leaving children behind.

const live = new Set<ChildProcess>();

async function stopAll(procs: ChildProcess[], dir: string): Promise<void> {
  // The controller manager and API server first, etcd (their store) last.
  for (const p of [...procs].reverse()) await terminate(p);
  rmSync(dir, { recursive: true, force: true });
}

/** SIGTERM, then SIGKILL after 5 s: the data is thrown away, so a clean shutdown is welcome but not needed. */
function terminate(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

let handlersInstalled = false;

/**
 * Children must not outlive this process. A normal exit runs 'exit' handlers; SIGINT/SIGTERM only if handled; a
 * SIGKILL runs nothing, so a small detached shell also watches this process: once it is gone, the shell kills the
 * pids in DIR/pids and removes DIR. The shell ends by itself when stop() has removed DIR.
 */
function guardChildren(dir: string): void {
  const script =
    'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; ' +
    '[ -f "$2/pids" ] && kill -9 $(cat "$2/pids") 2>/dev/null; rm -rf "$2"';
  spawn('sh', ['-c', script, 'reaper', String(process.pid), dir], { detached: true, stdio: 'ignore' }).unref();
  if (handlersInstalled) return;
  handlersInstalled = true;
  const killAll = () => live.forEach((p) => p.kill('SIGKILL'));
  process.once('exit', killAll);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)
    process.once(sig, () => {
      killAll();
      process.exit(code);
    });
}

// ---------------------------------------------------------------------------------------------------------------
// An existing cluster (COFRE_TEST_KUBECONFIG), e.g. kind.

async function useExisting(kubeconfigPath: string): Promise<TestCluster> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`COFRE_TEST_KUBECONFIG=${kubeconfigPath} has no current cluster`);
  const caCert = cluster.caData
    ? Buffer.from(cluster.caData, 'base64').toString()
    : cluster.caFile
      ? readFileSync(cluster.caFile, 'utf8')
      : undefined;
  if (!caCert) throw new Error(`COFRE_TEST_KUBECONFIG: cluster ${cluster.name} has no CA (tests verify TLS)`);
  let adminToken = kc.getCurrentUser()?.token;
  if (!adminToken) {
    // kind's kubeconfig authenticates with a client certificate: mint a cluster-admin service-account token.
    const ns = 'kube-system';
    const sa = 'cofre-test-admin';
    const tolerateExists = (e: { code?: number }) => {
      if (e.code !== 409) throw e;
    };
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core
      .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } })
      .catch(tolerateExists);
    await kc
      .makeApiClient(k8s.RbacAuthorizationV1Api)
      .createClusterRoleBinding({
        body: {
          metadata: { name: sa },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
        },
      })
      .catch(tolerateExists);
    const tr = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
    });
    adminToken = tr.status?.token;
    if (!adminToken) throw new Error('COFRE_TEST_KUBECONFIG: the TokenRequest for an admin token returned none');
  }
  const discovery = await get(`${cluster.server}/.well-known/openid-configuration`, caCert, adminToken);
  const serviceAccountIssuer = (JSON.parse(discovery.body) as { issuer: string }).issuer;
  return {
    name: cluster.name,
    dir: path.dirname(kubeconfigPath),
    server: cluster.server,
    caCert,
    kubeconfigPath,
    adminToken,
    serviceAccountIssuer,
    stop: async () => {},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// CLI: `up` leaves the processes running (detached, pids in DIR/pids) for use by hand; `down` stops them.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidsIn(dir: string): number[] {
  const file = path.join(dir, 'pids');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

async function cli(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const at = rest.indexOf('--name');
  const name = (at >= 0 ? rest[at + 1] : undefined) ?? 'dev';
  const dir = path.join(tmpdir(), 'cofre-clusters', name);
  if (cmd === 'up') {
    const pids = pidsIn(dir);
    if (pids.length > 0 && pids.every(alive)) {
      console.log(path.join(dir, 'kubeconfig')); // already up
      return;
    }
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL'); // leftovers of a half-dead cluster
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const cluster = await launch(name, dir, !rest.includes('--no-controller-manager'), true);
    console.error(`cluster ${name}: ${cluster.server}, logs and pids in ${dir}; stop it with 'down --name ${name}'`);
    console.log(cluster.kubeconfigPath);
  } else if (cmd === 'down') {
    const pids = pidsIn(dir).filter(alive);
    for (const pid of pids.reverse()) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100);
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  } else {
    console.error('usage: node --import tsx scripts/test-cluster.ts up|down [--name NAME] [--no-controller-manager]');
    process.exitCode = 2;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e: Error) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}

// One real Kubernetes node for tests: containerd + runc + kubelet (and a kube-scheduler) on this machine, joined to a
// control plane from scripts/test-cluster.ts, running pods from images built locally (scripts/build-image.ts).
// docs/testing.md explains the rules; in short:
//   - one node per machine (fixed paths, ports and bridge): a second start fails on NODE_LOCK instead of corrupting
//     the first; a start after a crashed run first tears down what that run left;
//   - pods reach this machine's loopback only with hostNetwork: true; pods on the bridge reach each other and this
//     host, and nothing they send is forwarded off the machine (an iptables DROP rule, no masquerading);
//   - teardown undoes everything the node did to the host (processes, mounts, cgroups, iptables chains, the bridge,
//     /var/lib/kubelet), with or without the control plane, and also runs when the test process dies (the host side
//     and the teardown are in test-node-host.ts).
//
//   import { startNode } from '../scripts/test-node.js';   // in a test, after startCluster(); stop() in after()
//   node --import tsx scripts/test-node.ts up KUBECONFIG   // for hand use, with a cluster from test-cluster.ts up
//   node --import tsx scripts/test-node.ts down            // undoes `up` (or whatever a crashed test left)
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importImage, testImages } from './build-image.js';
import { get, kubeBinaries, type TestCluster } from './test-cluster.js';
import { alive, BRIDGE, CNI_NETWORK, cgroupRoots, forwardRule, foreignKubelet, lockHolder } from './test-node-host.js';
import { serviceRangeRule } from './test-node-host.js';
import { NODE_DIR, NODE_LOCK, NODE_SOCKET, nodeLeftovers, nodePath, pidsFile, teardownNode } from './test-node-host.js';
export { NODE_DIR, NODE_LOCK, NODE_RUN_DIR, NODE_SOCKET, nodeLeftovers, teardownNode } from './test-node-host.js';

/**
 * The node's name, which is also the address the API server dials for logs and exec (the Hostname address comes
 * first in its preference): `localhost` resolves to this machine's loopback everywhere, where the kubelet listens.
 */
export const NODE_NAME = 'localhost';
export const KUBELET_PORT = 18820;
const KUBELET_HEALTHZ_PORT = 18821;
const STREAM_PORT = 18810;
const POD_SUBNET = '10.88.100.0/24';
/**
 * This machine's address on the pod bridge (the subnet's gateway, which the bridge plugin gives the bridge): pods
 * on the bridge reach a server on the host network there, e.g. a Cofre server pod with hostNetwork: true.
 */
export const NODE_BRIDGE_ADDRESS = '10.88.100.1';
const CNI_BIN = '/usr/lib/cni';
const READY_TIMEOUT_MS = 120_000;

export interface TestNode {
  name: string;
  dir: string;
  /** containerd's socket, for `ctr -a SOCKET -n k8s.io ...`. */
  socket: string;
  /** Loads an OCI image archive (e.g. from cofreImage()) into the node; pods use it with imagePullPolicy Never. */
  importImage(archive: string): Promise<void>;
  /** Stops everything and undoes what the node did to the host; idempotent. */
  stop(): Promise<void>;
}

export interface NodeOptions {
  /** More OCI archives to import before the node is Ready (the pause and busybox test images always are). */
  images?: string[];
}

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = nodePath;

/** Starts the node and waits until it is Ready on `cluster`. */
export async function startNode(cluster: TestCluster, opts: NodeOptions = {}): Promise<TestNode> {
  return launch(
    cluster.kubeconfigPath,
    { server: cluster.server, ca: cluster.caCert, token: cluster.adminToken },
    opts,
    false,
  );
}

interface Api {
  server: string;
  ca: string;
  token: string;
}

async function launch(kubeconfig: string, api: Api, opts: NodeOptions, detached: boolean): Promise<TestNode> {
  preflight();
  const bin = await kubeBinaries();
  for (const cmd of ['kubelet', 'kube-scheduler'])
    if (!existsSync(path.join(bin, cmd)))
      throw new Error(`${bin} holds no ${cmd} (envtest's KUBEBUILDER_ASSETS ship none): unset KUBEBUILDER_ASSETS`);
  const images = await testImages();
  await acquireLock(process.pid);
  const busy = await busyPorts([KUBELET_PORT, KUBELET_HEALTHZ_PORT, STREAM_PORT]);
  if (busy.length > 0) {
    rmSync(NODE_LOCK, { force: true });
    throw new Error(`the test node needs 127.0.0.1 ports ${busy.join(', ')}, which something else listens on`);
  }
  const procs: ChildProcess[] = [];
  const node: TestNode = {
    name: NODE_NAME,
    dir: NODE_DIR,
    socket: NODE_SOCKET,
    importImage: (archive) => importImage(NODE_SOCKET, archive),
    // A late stop() must not take down a node that another live process started since.
    stop: async () => {
      const holder = lockHolder();
      if (holder === undefined || holder === process.pid || !alive(holder)) await teardownNode();
    },
  };
  try {
    if (!detached) guardNode(process.pid);
    mkdirSync(f('net.d'), { recursive: true });
    mkdirSync(path.dirname(NODE_SOCKET), { recursive: true });
    writeFileSync(f('containerd.toml'), containerdConfig());
    writeFileSync(f('kubelet.yaml'), kubeletConfig());
    writeFileSync(f(`net.d/10-${CNI_NETWORK}.conflist`), cniConfig());
    // Before any pod exists: nothing a pod on the bridge sends leaves this machine (without kube-proxy the service
    // IP 10.0.0.1 would otherwise be routed out to an address that is not ours).
    await forwardRule('-I');
    await serviceRangeRule('-I');

    procs.push(run('containerd', detached, ['--config', f('containerd.toml')]));
    await waitFor('containerd', 20_000, procs, async () => {
      await execFileP('ctr', ['-a', NODE_SOCKET, 'version']);
      return true;
    });
    for (const archive of [images.pause, images.busybox, ...(opts.images ?? [])]) await node.importImage(archive);

    procs.push(
      run(path.join(bin, 'kubelet'), detached, [
        ...['--config', f('kubelet.yaml'), '--kubeconfig', kubeconfig, '--hostname-override', NODE_NAME],
        ...['--root-dir', f('kubelet'), '--cert-dir', f('kubelet-pki')],
      ]),
    );
    // test-cluster.ts starts no scheduler; pods may still set spec.nodeName themselves.
    procs.push(
      run(path.join(bin, 'kube-scheduler'), detached, [
        ...['--kubeconfig', kubeconfig, '--authentication-kubeconfig', kubeconfig],
        ...['--authorization-kubeconfig', kubeconfig, '--leader-elect=false', '--secure-port', '0'],
      ]),
    );
    await waitFor(`node ${NODE_NAME} Ready`, READY_TIMEOUT_MS, procs, async () => {
      const res = await get(`${api.server}/api/v1/nodes/${NODE_NAME}`, api.ca, api.token);
      if (res.status !== 200) return undefined;
      const conditions = (JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } })
        .status?.conditions;
      return conditions?.some((c) => c.type === 'Ready' && c.status === 'True') || undefined;
    });
    return node;
  } catch (err) {
    const tails = logTails();
    await teardownNode();
    throw new Error(`${(err as Error).message}\n${tails}`);
  }
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the test node needs root (containerd, mounts, cgroups, iptables)');
  const other = foreignKubelet();
  if (other !== undefined && cgroupRoots().length > 0)
    throw new Error(
      `this machine runs a kubelet of its own (process ${other}) whose pods live in the kubepods cgroups the test ` +
        `node would use (and remove on teardown): run the tests on a machine without one`,
    );
  const needs: [string, string][] = [
    ['containerd', '/usr/bin/containerd'],
    ['runc', '/usr/sbin/runc'],
    ['containernetworking-plugins', `${CNI_BIN}/bridge`],
    ['iptables', '/usr/sbin/iptables'],
    ['conntrack', '/usr/sbin/conntrack'],
  ];
  const missing = needs.filter(([, file]) => !existsSync(file) && !onPath(path.basename(file))).map(([p]) => p);
  if (missing.length > 0)
    throw new Error(`the test node needs: apt-get install -y ${missing.join(' ')} (.ci/run installs them)`);
}

/** The ports among `ports` that cannot be listened on at 127.0.0.1 (the kubelet and containerd use fixed ones). */
async function busyPorts(ports: number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports)
    await new Promise<void>((resolve) => {
      const s = createServer();
      s.once('error', () => {
        busy.push(port);
        resolve();
      });
      s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
    });
  return busy;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, cmd)));
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration. Each choice below is one this machine (root without CAP_SYS_RESOURCE, cgroup v1, no registry)
// needs; docs/testing.md says why.

function containerdConfig(): string {
  return `version = 2
root = "${f('containerd')}"
state = "${path.dirname(NODE_SOCKET)}"

[grpc]
  address = "${NODE_SOCKET}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/cofre-test/pause:1"
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE the sandbox's oom_score_adj of -998 makes runc fail ("can't get final child's PID").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "${STREAM_PORT}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${f('net.d')}"
`;
}

function kubeletConfig(): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://${NODE_SOCKET}
address: 127.0.0.1
port: ${KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT}
# The kubelet API is open on loopback only: a test convenience, never a deployment.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
podLogsDir: ${f('pod-logs')}
clusterDomain: cluster.local
# A busy shared disk must neither evict test pods nor garbage-collect the images that cannot be pulled again.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`;
}

function cniConfig(): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: CNI_NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false, // nothing is translated to this machine's address, so nothing leaves as if from it
          hairpinMode: true,
          ipam: { type: 'host-local', dataDir: f('cni-ipam'), ranges: [[{ subnet: POD_SUBNET }]] },
        },
      ],
    },
    null,
    2,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Processes.

function run(file: string, detached: boolean, args: string[]): ChildProcess {
  const name = path.basename(file);
  const log = openSync(f(`${name}.log`), 'a');
  const child = spawn(file, args, { cwd: NODE_DIR, detached, stdio: ['ignore', log, log] });
  closeSync(log);
  child.on('error', () => {}); // a failed spawn shows up as an early exit in waitFor
  if (child.pid !== undefined) appendFileSync(f('pids'), `${child.pid} ${name}\n`);
  if (detached) child.unref();
  return child;
}

async function waitFor(what: string, ms: number, procs: ChildProcess[], probe: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode}) before ${what}`);
    try {
      if (await probe()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? ` (last: ${last})` : ''}`);
}

function logTails(): string {
  return ['containerd', 'kubelet', 'kube-scheduler']
    .filter((n) => existsSync(f(`${n}.log`)))
    .map((n) => `--- end of ${n}.log ---\n${readFileSync(f(`${n}.log`), 'utf8').slice(-3000)}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// One node per machine.

/** Takes NODE_LOCK for `owner`; a lock whose owner is gone is a crashed run: its leftovers are torn down first. */
async function acquireLock(owner: number): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(NODE_LOCK, `${owner}\n`, { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = lockHolder();
    if (holder && alive(holder))
      throw new Error(
        `a test node is already running on this machine (process ${holder}, ${NODE_LOCK}); there can be one at a ` +
          `time: wait for it, or stop it with 'node --import tsx scripts/test-node.ts down'`,
      );
    await teardownNode(); // removes the stale lock too
  }
  throw new Error(`could not take ${NODE_LOCK}`);
}

/**
 * The node must not outlive the process that started it: a detached shell waits for that process to end and then
 * runs `down`, unless the lock is gone or names another process by then (a stop() ran, or someone else's node).
 */
function guardNode(owner: number): void {
  const script =
    'while kill -0 "$1" 2>/dev/null && [ "$(cat "$2" 2>/dev/null)" = "$1" ]; do sleep 1; done; ' +
    '[ "$(cat "$2" 2>/dev/null)" = "$1" ] && exec "$3" --import tsx "$4" down';
  const args = [
    '-c',
    script,
    'node-reaper',
    String(owner),
    NODE_LOCK,
    process.execPath,
    path.join(here, 'test-node.ts'),
  ];
  spawn('sh', args, { cwd: path.join(here, '..'), detached: true, stdio: 'ignore' }).unref();
}

// ---------------------------------------------------------------------------------------------------------------
// CLI: `up` leaves the node running (detached, lock owned by containerd's pid) for use by hand; `down` undoes it.

async function cli(argv: string[]): Promise<void> {
  const [cmd, kubeconfig] = argv;
  if (cmd === 'up' && kubeconfig) {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const cluster = kc.getCurrentCluster();
    const token = kc.getCurrentUser()?.token;
    if (!cluster?.caData || !token)
      throw new Error(`${kubeconfig}: expected a kubeconfig from scripts/test-cluster.ts (CA data and a token)`);
    const ca = Buffer.from(cluster.caData, 'base64').toString();
    await launch(kubeconfig, { server: cluster.server, ca, token }, {}, true);
    // The lock outlives this process: it names containerd, which lives as long as the node.
    const containerd = pidsFile().find((p) => p.name === 'containerd');
    if (containerd) writeFileSync(NODE_LOCK, `${containerd.pid}\n`);
    console.error(`node ${NODE_NAME} is Ready; logs in ${NODE_DIR}; stop it with 'down'`);
  } else if (cmd === 'down') {
    await teardownNode();
    const left = nodeLeftovers();
    if (left.length > 0) {
      console.error(`left behind:\n  ${left.join('\n  ')}`);
      process.exitCode = 1;
    }
  } else {
    console.error('usage: node --import tsx scripts/test-node.ts up KUBECONFIG | down');
    process.exitCode = 2;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e: Error) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}

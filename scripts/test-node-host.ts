// What the test node (scripts/test-node.ts) does to this machine, and undoing it: its fixed paths, the iptables rule
// that keeps pod traffic on the machine, and a teardown that works from what is on the host (the pids file, /proc,
// mountinfo, cgroups) rather than from the API server, so it also cleans up after a crash or a stopped control plane.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SERVICE_CLUSTER_IP_RANGE } from './test-cluster.js';

/** Holds the node's configuration, logs, pids, containerd's images and the kubelet's pods; removed by teardown. */
export const NODE_DIR = '/tmp/cofre-node';
/** containerd's runtime state and socket (a short path: unix socket paths are limited to 108 bytes). */
export const NODE_RUN_DIR = '/run/cofre-node';
export const NODE_SOCKET = `${NODE_RUN_DIR}/containerd/containerd.sock`;
/** Names the process whose node this is; present while a node is up. */
export const NODE_LOCK = '/tmp/cofre-node.lock';
export const BRIDGE = 'cofre0';
export const CNI_NETWORK = 'cofre-test';

const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A path in NODE_DIR. */
export const nodePath = (p: string) => path.join(NODE_DIR, p);

/**
 * Adds (-I) or removes (-D) the rule that drops whatever the bridge would forward to another interface, for IPv4
 * and IPv6 alike (pods get IPv4 addresses only, but their interfaces have IPv6 link-local ones).
 */
export async function forwardRule(op: '-I' | '-D'): Promise<void> {
  const rule = ['FORWARD', '-i', BRIDGE, '!', '-o', BRIDGE, '-j', 'DROP'];
  for (const ipt of ['iptables', 'ip6tables']) await toggleRule(ipt, op, rule);
}

/**
 * The rule that refuses, at once, whatever this machine itself sends to the Services' ClusterIP range: a pod on
 * the host network that keeps the kubelet's KUBERNETES_SERVICE_HOST (10.0.0.1), or a control plane dialling a
 * Service's ClusterIP, would otherwise follow the default route off the machine (no kube-proxy catches it here).
 */
export const SERVICE_RANGE_RULE = ['OUTPUT', '-d', SERVICE_CLUSTER_IP_RANGE, '-j', 'REJECT'];

export async function serviceRangeRule(op: '-I' | '-D'): Promise<void> {
  await toggleRule('iptables', op, SERVICE_RANGE_RULE);
}

/** Inserts a rule once, or deletes every copy of it. */
async function toggleRule(ipt: string, op: '-I' | '-D', rule: string[]): Promise<void> {
  const present = () =>
    execFileP(ipt, ['-C', ...rule]).then(
      () => true,
      () => false,
    );
  if (op === '-I') {
    if (!(await present())) await execFileP(ipt, ['-I', ...rule]);
  } else while (await present()) await execFileP(ipt, ['-D', ...rule]);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function lockHolder(): number | undefined {
  try {
    return Number(readFileSync(NODE_LOCK, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Teardown: works from what is on the host (pids file, /proc, mountinfo, cgroups), not from the API server, so it
// also cleans up after a crash or after the control plane is gone.

let tearingDown: Promise<void> | undefined;

/** Stops the node and undoes everything it did to the host. Idempotent; safe when nothing is running. */
export function teardownNode(): Promise<void> {
  tearingDown ??= doTeardown().finally(() => (tearingDown = undefined));
  return tearingDown;
}

async function doTeardown(): Promise<void> {
  const pids = pidsFile();
  // containerd keeps one directory per pod sandbox; CNI's loopback results outside our dirs are named after them.
  const sandboxDir = nodePath('containerd/io.containerd.grpc.v1.cri/sandboxes');
  const sandboxes = existsSync(sandboxDir) ? readdirSync(sandboxDir) : [];
  const byName = (n: string) => pids.filter((p) => p.name === n).map((p) => p.pid);
  const t0 = Date.now();
  const step = (what: string) =>
    process.env.COFRE_NODE_DEBUG && console.error(`teardown: ${what} at ${Date.now() - t0} ms`);
  // The kubelet and scheduler first, so nothing restarts the containers killed next.
  await terminate([...byName('kubelet'), ...byName('kube-scheduler')]);
  step('kubelet');
  // The kubepods cgroups (and the kubelet's iptables chains) are the node's own unless another kubelet runs here
  // (preflight refuses to start then; this guards `down` by hand): never kill or remove that one's pods.
  const ownCgroups = foreignKubelet() === undefined;
  if (ownCgroups) killCgroupProcesses();
  step('cgroup procs');
  await terminate(byName('containerd'));
  step('containerd');
  // containerd's shims outlive it (they are re-parented); they name our socket on their command line.
  await terminate(processesMentioning(NODE_SOCKET));
  step('shims');
  if (ownCgroups) killCgroupProcesses();
  unmountUnder([NODE_DIR, NODE_RUN_DIR]);
  await execFileP('ip', ['link', 'del', BRIDGE]).catch(() => {});
  await forwardRule('-D').catch(() => {});
  await serviceRangeRule('-D').catch(() => {});
  step('unmount, bridge, forward and service-range rules');
  if (ownCgroups) removeKubeletChains(); // that kubelet's chains too
  if (ownCgroups) removeCgroups();
  step('chains, cgroups');
  rmSync(NODE_DIR, { recursive: true, force: true });
  rmSync(NODE_RUN_DIR, { recursive: true, force: true });
  removeHostLeftovers(sandboxes);
  rmSync(NODE_LOCK, { force: true });
}

export function pidsFile(): { pid: number; name: string }[] {
  if (!existsSync(nodePath('pids'))) return [];
  return readFileSync(nodePath('pids'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pid, name] = line.split(' ');
      return { pid: Number(pid), name: name ?? '' };
    });
}

/** SIGTERM, then SIGKILL after 5 s. */
async function terminate(pids: number[]): Promise<void> {
  const live = pids.filter(alive);
  for (const pid of live) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && live.some(alive); i++) await sleep(100);
  for (const pid of live.filter(alive)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 20 && live.some(alive); i++) await sleep(100);
}

/** Processes whose command line contains `needle` (e.g. containerd shims started for our socket). */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * A kubelet (or a distribution that embeds one) on this machine, not the test node's, that shares our cgroup root.
 * One in a container (kind) has its own mount and cgroup namespaces, and its kubepods nest under the container's.
 */
export function foreignKubelet(): number | undefined {
  const ourMounts = readlinkSync('/proc/self/ns/mnt');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/mnt`) !== ourMounts) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (['kubelet', 'k3s', 'k3s-agent', 'k3s-server', 'k0s'].includes(path.basename(argv[0] ?? '')))
        if (!argv.some((a) => a.includes(`${NODE_DIR}/`))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The kubelet's cgroup trees: kubepods (pods) and k8s.io (containerd's namespace), under each v1 hierarchy or v2. */
export function cgroupRoots(): string[] {
  const base = '/sys/fs/cgroup';
  const hierarchies = existsSync(`${base}/cgroup.controllers`)
    ? [base]
    : readdirSync(base).map((h) => path.join(base, h));
  return hierarchies.flatMap((h) => ['kubepods', 'k8s.io'].map((n) => path.join(h, n))).filter((d) => existsSync(d));
}

function cgroupDirs(root: string): string[] {
  const out = [root];
  for (const e of readdirSync(root, { withFileTypes: true }))
    if (e.isDirectory()) out.push(...cgroupDirs(path.join(root, e.name)));
  return out;
}

/** Every process of every pod is in a kubepods cgroup: SIGKILL them all, so no container survives its node. */
function killCgroupProcesses(): void {
  for (let round = 0; round < 5; round++) {
    let found = 0;
    for (const root of cgroupRoots())
      for (const dir of cgroupDirs(root)) {
        const procs = existsSync(path.join(dir, 'cgroup.procs'))
          ? readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
          : '';
        for (const pid of procs.split('\n').filter(Boolean).map(Number)) {
          found++;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    if (found === 0) return;
    execFileSync('sleep', ['0.2']);
  }
}

function removeCgroups(): void {
  for (const root of cgroupRoots())
    for (const dir of cgroupDirs(root).reverse())
      try {
        rmdirSync(dir);
      } catch {
        // a cgroup whose last process is still exiting; the next teardown gets it
      }
}

/** Mount points at or under `dirs`, deepest first, read from /proc/self/mountinfo. */
export function mountsUnder(dirs: string[]): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescape(line.split(' ')[4] ?? ''))
    .filter((m) => dirs.some((d) => m === d || m.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length);
}

function unmountUnder(dirs: string[]): void {
  // Mounts stack (the kubelet bind-mounts its root dir onto itself), so repeat until none is left.
  for (let round = 0; round < 10; round++) {
    const mounts = mountsUnder(dirs);
    if (mounts.length === 0) return;
    for (const m of mounts)
      try {
        execFileSync('umount', [m], { stdio: 'ignore' });
      } catch {
        try {
          execFileSync('umount', ['-l', m], { stdio: 'ignore' });
        } catch {
          // already gone with its parent
        }
      }
  }
}

/** The chains the kubelet adds to iptables (it has no flag to not add them). */
function removeKubeletChains(): void {
  for (const ipt of ['iptables', 'ip6tables']) {
    const quiet = (args: string[]) => {
      try {
        execFileSync(ipt, args, { stdio: 'ignore' });
      } catch {
        // not there
      }
    };
    quiet(['-D', 'INPUT', '-j', 'KUBE-FIREWALL']);
    quiet(['-D', 'OUTPUT', '-j', 'KUBE-FIREWALL']);
    quiet(['-F', 'KUBE-FIREWALL']);
    quiet(['-X', 'KUBE-FIREWALL']);
    for (const table of ['filter', 'nat', 'mangle']) quiet(['-t', table, '-X', 'KUBE-KUBELET-CANARY']);
    quiet(['-t', 'mangle', '-X', 'KUBE-IPTABLES-HINT']);
  }
}

/** What the kubelet and CNI leave outside our directories, removed only where it is ours or empty. */
function removeHostLeftovers(sandboxes: string[]): void {
  const rmdirQuiet = (d: string) => {
    try {
      rmdirSync(d);
    } catch {
      // not empty (someone else's) or absent
    }
  };
  // The kubelet links each container's log here; ours point into NODE_DIR.
  if (existsSync('/var/log/containers')) {
    for (const e of readdirSync('/var/log/containers')) {
      const p = path.join('/var/log/containers', e);
      if (isLinkInto(p, NODE_DIR)) unlinkSync(p);
    }
    rmdirQuiet('/var/log/containers');
  }
  rmSync('/var/lib/kubelet/device-plugins', { recursive: true, force: true });
  rmdirQuiet('/var/lib/kubelet');
  const results = '/var/lib/cni/results';
  if (existsSync(results))
    for (const e of readdirSync(results))
      if (e.startsWith(`${CNI_NETWORK}-`) || sandboxes.some((id) => e.startsWith(`cni-loopback-${id}-`)))
        rmSync(path.join(results, e));
  for (const d of [results, '/var/lib/cni/networks', '/var/lib/cni']) rmdirQuiet(d);
}

function isLinkInto(p: string, dir: string): boolean {
  try {
    return readlinkSync(p).startsWith(`${dir}/`);
  } catch {
    return false;
  }
}

/**
 * What a node left on the host, one line each: live processes, mounts, cgroups, iptables chains and rules, the
 * bridge, directories. Empty after a clean teardown; tests assert so.
 */
export function nodeLeftovers(): string[] {
  const out: string[] = [];
  for (const pid of processesMentioning(`${NODE_DIR}/`).concat(processesMentioning(`${NODE_RUN_DIR}/`)))
    out.push(`process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`);
  for (const m of mountsUnder([NODE_DIR, NODE_RUN_DIR, '/var/lib/kubelet'])) out.push(`mount ${m}`);
  for (const c of cgroupRoots()) out.push(`cgroup ${c}`);
  for (const d of [NODE_DIR, NODE_RUN_DIR, NODE_LOCK, '/var/lib/kubelet']) if (existsSync(d)) out.push(`path ${d}`);
  if (existsSync(`/sys/class/net/${BRIDGE}`)) out.push(`bridge ${BRIDGE}`);
  if (existsSync('/var/lib/cni/results'))
    for (const e of readdirSync('/var/lib/cni/results')) out.push(`CNI result /var/lib/cni/results/${e}`);
  for (const ipt of ['iptables', 'ip6tables'])
    for (const line of execFileSync(`${ipt}-save`, { encoding: 'utf8' }).split('\n'))
      if (/KUBE-|cofre0/.test(line) || line.startsWith(`-A OUTPUT -d ${SERVICE_CLUSTER_IP_RANGE} -j REJECT`))
        out.push(`${ipt}: ${line}`);
  return out;
}

// KV v2 side by side: Cofre's server on SQLite against OpenBao on raft, on the same machine in the same run, with wrk
// (issue 18). Rounds alternate between the two servers so that a change in the machine's load hits both alike; the
// table gives each round and the median of the ratios.
//
//   npm run build && node --import tsx bench/vs-openbao.ts --openbao /path/to/openbao [options]
//
// Options: --rounds 3, --seconds 8, --warmup 3 (seconds of each kind against each server before round 1, not
// counted: JIT compilation, PostgreSQL's plan and buffer caches), --connections 64, --threads 2 (wrk's), --cofre-workers <n> (Cofre's server
// threads; one when unset), --stress <n> (run `stress-ng --cpu n` beside both servers during the rounds), --audit (a
// file audit device on both; with --audit-device socket, a TCP socket device on both, to a collector in this process
// that reads and drops the lines), --only reads|writes, --cofre-storage postgresql (two Cofre nodes on a throwaway durable
// PostgreSQL 15 instead of one server on SQLite; wrk's threads are then shared between the nodes, each with its
// connections, and its percentiles are over both nodes' requests; --fresh-wal leaves that PostgreSQL without
// the WAL segments made beforehand, see startCofreOnPostgres; --pg-socket has the nodes reach it through its Unix
// socket instead of TCP on 127.0.0.1), --no-autogroup (Linux's autogroup scheduling off for the run, then back on: as
// root; see autogroupOff). OpenBao is not built here: see
// bench/README.md for how to build v2.6.2. wrk and stress-ng are Debian packages.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { startDiskProbe, STALL_MS, type DiskProbeResult } from './disk-probe.js';
import { startNode, unseal } from '../test/cluster-support.js';
import { freePort } from '../test/support.js';

const { values: opts } = parseArgs({
  options: {
    openbao: { type: 'string', default: process.env.OPENBAO_BIN },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    'cofre-workers': { type: 'string' },
    stress: { type: 'string' },
    audit: { type: 'boolean', default: false },
    'audit-device': { type: 'string', default: 'file' },
    only: { type: 'string' },
    'cofre-storage': { type: 'string', default: 'sqlite' },
    'fresh-wal': { type: 'boolean', default: false },
    'pg-socket': { type: 'boolean', default: false },
    'no-autogroup': { type: 'boolean', default: false },
  },
});
if (!opts.openbao) throw new Error('give the OpenBao binary: --openbao <path> (or OPENBAO_BIN)');
const AUDIT_DEVICE = opts['audit-device'];
if (AUDIT_DEVICE !== 'file' && AUDIT_DEVICE !== 'socket') throw new Error('--audit-device is file or socket');
/** Where the socket audit devices of both servers send their lines (--audit-device socket). */
let collectorAddress = '';
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
const KEYS = 1000;
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
// wrk gives each thread connections / threads; with two nodes, each node gets threads / 2 of them.
const NODES = opts['cofre-storage'] === 'postgresql' ? 2 : 1;
if (Number(opts.threads) % NODES !== 0 || Number(opts.connections) % Number(opts.threads) !== 0) {
  throw new Error(`--connections must be a multiple of --threads, and --threads of the ${NODES} Cofre node(s)`);
}

/**
 * What to stop when the script ends, each registered as soon as its process started: a signal or an error during
 * start-up finds here the processes started so far, before their start function has returned a server.
 */
const teardown: (() => unknown)[] = [];
/** Set once the clean-up began: nothing new is started after it (a wrk or stress-ng would outlive the script). */
let stopping = false;

interface Server {
  name: string;
  /** Where wrk sends its load: one URL, or (Cofre on PostgreSQL) one per node. */
  urls: string[];
  url: string;
  token: string;
  /** Its processes (OpenBao's, Cofre's, or Cofre's nodes), whose CPU time is looked at during the other's runs. */
  pids: number[];
}

interface Run {
  perSec: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  /** What a probe of the disk's fsyncs saw during the run (disk-probe.ts). */
  disk?: DiskProbeResult;
}

async function waitFor(url: string, ok: (status: number) => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      if (ok((await fetch(url)).status)) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

async function call(server: { url: string; token?: string }, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}/v1/${path}`, {
    method,
    headers: { ...(server.token ? { 'x-vault-token': server.token } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

async function startOpenBao(dir: string): Promise<Server> {
  const port = await freePort();
  const clusterPort = await freePort();
  const config = join(dir, 'openbao.hcl');
  writeFileSync(
    config,
    [
      `storage "raft" {\n  path = "${join(dir, 'raft')}"\n  node_id = "n1"\n}`,
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}`,
      `api_addr = "http://127.0.0.1:${port}"`,
      `cluster_addr = "http://127.0.0.1:${clusterPort}"`,
      'disable_mlock = true',
      // OpenBao takes audit devices from its configuration only (its API refuses to enable them).
      ...(opts.audit
        ? AUDIT_DEVICE === 'socket'
          ? [
              `audit "socket" "socket" {\n  options {\n    address = "${collectorAddress}"\n    socket_type = "tcp"\n  }\n}`,
            ]
          : [`audit "file" "file" {\n  options {\n    file_path = "${join(dir, 'openbao-audit.log')}"\n  }\n}`]
        : []),
    ].join('\n'),
  );
  mkdirSync(join(dir, 'raft'), { recursive: true });
  const child = spawn(opts.openbao!, ['server', `-config=${config}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  teardown.push(() => child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v1/sys/health`, (s) => s !== 0);
  const init = await call({ url }, 'PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 });
  await call({ url }, 'PUT', 'sys/unseal', { key: (init.keys as string[])[0] });
  await waitFor(`${url}/v1/sys/health`, (s) => s === 200);
  const server = {
    name: 'OpenBao',
    url,
    urls: [url],
    token: init.root_token as string,
    pids: [child.pid!],
  };
  await call(server, 'POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
  return server;
}

async function startCofre(dir: string): Promise<Server> {
  const port = await freePort();
  const token = 'bench-root';
  // No per-request log line (dev mode's default), as OpenBao writes none.
  const args = ['dist/cli/main.js', 'server', '--dev', '--data-dir', join(dir, 'cofre'), '--log-level', 'warn'];
  args.push('--dev-listen-address', `127.0.0.1:${port}`, '--dev-root-token-id', token);
  if (opts['cofre-workers']) args.push('--workers', opts['cofre-workers']);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  teardown.push(() => child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v1/sys/health`, (s) => s === 200);
  if (opts['cofre-workers']) await new Promise((r) => setTimeout(r, 2000)); // the other threads start after the first
  return { name: 'Cofre', url, urls: [url], token, pids: [child.pid!] };
}

/** Two Cofre nodes (`cofre server --config`, the build) on one table of a throwaway durable PostgreSQL. */
async function startCofreOnPostgres(dir: string): Promise<Server> {
  const db = await startPostgres({ durable: true });
  teardown.push(() => db.stop());
  if (!opts['fresh-wal']) await makeWalSegments(db);
  // --pg-socket: the nodes reach PostgreSQL through its Unix socket, as a database on the same machine can be reached.
  const url = opts['pg-socket'] ? db.socketUrl! : db.url;
  const nodes: Awaited<ReturnType<typeof startNode>>[] = [];
  for (const name of ['n1', 'n2']) {
    const node = await startNode(dir, name, url, { built: true });
    teardown.push(() => node.kill('SIGKILL'));
    nodes.push(node);
  }
  const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
  const token = init.body.root_token as string;
  for (const node of nodes) await unseal(node, init.body.keys, 1);
  const server: Server = {
    name: 'Cofre',
    url: nodes[0]!.url,
    urls: nodes.map((n) => n.url),
    token,
    pids: nodes.map((node) => node.child.pid!),
  };
  await call(server, 'POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
  return server;
}

/**
 * A PostgreSQL that has been running reuses its WAL segments; a fresh cluster creates and zero-fills a new 16 MB one
 * about every 1.4 s at Cofre's write rate, and each creation held the commits behind it for about 50 ms: from round
 * 2 on, that was Cofre's write p99 (bench/README.md). So, as in a database in steady state, 96 segments (1.5 GiB:
 * more than five rounds of 8 s write) are made beforehand and kept for reuse: min_wal_size keeps them, a
 * checkpoint recycles them; max_wal_size is raised only as far as min_wal_size requires, so checkpoints still come
 * when that much WAL was written. Nothing of durability changes (fsync, synchronous_commit, full_page_writes stay
 * PostgreSQL's defaults). Not done to a server of PGHOST's, which is someone's own: the settings would stay.
 */
async function makeWalSegments(db: TestDatabase): Promise<void> {
  if (process.env.PGHOST) {
    log('PostgreSQL: PGHOST is set, so its WAL is left as it is (new segments may stall commits: see bench/README.md)');
    return;
  }
  await db.query(`ALTER SYSTEM SET min_wal_size = '2GB'`);
  await db.query(`ALTER SYSTEM SET max_wal_size = '2GB'`);
  await db.query('SELECT pg_reload_conf()');
  await db.query('CREATE TABLE IF NOT EXISTS wal_filler (n int)');
  for (let i = 0; i < 96; i++) {
    await db.query('INSERT INTO wal_filler VALUES (1)');
    await db.query('SELECT pg_switch_wal()');
  }
  await db.query('CHECKPOINT');
  await db.query('CHECKPOINT');
  const [files] = await db.query('SELECT count(*)::int AS n FROM pg_ls_waldir()');
  log(`PostgreSQL: ${String(files?.n)} WAL segments ready for reuse`);
}

async function prepare(server: Server, dir: string): Promise<void> {
  if (opts.audit && server.name === 'Cofre') {
    const file = join(dir, 'cofre-audit.log');
    await call(
      server,
      'PUT',
      `sys/audit/${AUDIT_DEVICE}`,
      AUDIT_DEVICE === 'socket'
        ? { type: 'socket', options: { address: collectorAddress } }
        : { type: 'file', options: { file_path: file } },
    );
  }
  for (let i = 0; i < KEYS; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) =>
        call(server, 'POST', `secret/data/bench/k${i + j}`, { data: { value: `value-${i + j}` } }),
      ),
    );
  }
}

/**
 * wrk against one server: reads of one secret, or writes spread over the 1,000 secrets. One wrk process in every
 * case, so that its percentiles are over all the requests of the run, as wrk counts them (its threads' latencies
 * in one histogram). When the server is several nodes, the script's setup() sends each wrk thread to one of them
 * (thread i to node i mod n), and each thread keeps its connections to its node.
 */
async function wrk(server: Server, kind: 'reads' | 'writes', scriptDir: string, seconds = SECONDS): Promise<Run> {
  if (stopping) throw new Error('stopping: no new wrk');
  const threads = Number(opts.threads);
  const script = join(scriptDir, `${kind}.lua`);
  writeFileSync(script, wrkScript(kind, server.urls).join('\n'));
  const args = ['-t', String(threads), '-c', String(opts.connections), '-d', `${seconds}s`, '--latency'];
  args.push('-H', `X-Vault-Token: ${server.token}`, '-H', 'Content-Type: application/json', '-s', script);
  args.push(`${server.urls[0]}/v1/secret/data/bench/k1`);
  return new Promise<Run>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    teardown.push(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    // 'close', not 'exit': the process can exit before its output has all been read.
    child.once('close', (code) => {
      // A throw here would be uncaught: the script would die without stopping its servers.
      if (code !== 0) return reject(new Error(`wrk failed: ${err}`));
      try {
        resolve(parseWrk(out, server.urls.length));
      } catch (parseError) {
        reject(parseError as Error);
      }
    });
  });
}

/**
 * The Lua script of a run. Writes give each thread its own counter, so each walks the 1,000 secrets from the first.
 * With several nodes, setup() (called for each thread in turn, before that thread connects) points it at its
 * node, and done() prints each thread's address, so that parseWrk can check that every node had its share.
 */
function wrkScript(kind: 'reads' | 'writes', urls: string[]): string[] {
  const lines: string[] = [];
  if (kind === 'writes') {
    lines.push(
      'local n = 0',
      'request = function()',
      '  n = n + 1',
      `  return wrk.format("POST", "/v1/secret/data/bench/k" .. (n % ${KEYS}), nil, '{"data":{"value":"v' .. n .. '"}}')`,
      'end',
    );
  }
  if (urls.length > 1) {
    const nodes = urls.map((u) => new URL(u)).map((u) => `{ "${u.hostname}", "${u.port}" }`);
    lines.push(
      `local nodes = { ${nodes.join(', ')} }`,
      'local set, placed = 0, {}',
      'function setup(thread)',
      '  local node = nodes[(set % #nodes) + 1]',
      '  set = set + 1',
      '  thread.addr = wrk.lookup(node[1], node[2])[1]',
      '  placed[#placed + 1] = tostring(thread.addr)',
      'end',
      'function done(summary, latency, requests)',
      '  for _, addr in ipairs(placed) do print("thread to " .. addr) end',
      'end',
    );
  }
  return lines;
}

function parseWrk(out: string, nodes = 1): Run {
  const ms = (v: string, unit: string) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[unit]!;
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    if (!m) throw new Error(`no ${p}% latency in wrk's output:\n${out}`);
    return ms(m[1]!, m[2]!);
  };
  const placed = new Set([...out.matchAll(/^thread to (\S+)$/gm)].map((m) => m[1]));
  if (nodes > 1 && placed.size !== nodes)
    throw new Error(`wrk's threads went to ${placed.size} of ${nodes} nodes:\n${out}`);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    perSec: Math.round(Number(rate?.[1] ?? 0)),
    p50ms: pct('50'),
    p99ms: pct('99'),
    errors: Number(non2xx?.[1] ?? 0) + socketErrors,
  };
}

/**
 * The machine's CPU time so far (Linux /proc/stat): idle (with I/O wait), stolen (a virtual machine's CPUs given to
 * others by the host: a run that lost much of it was disturbed from outside) and all.
 */
function cpuTimes(): { idle: number; steal: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: fields[3]! + fields[4]!, steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
}

/** The share of the machine left idle over the next `ms`. */
async function idleShare(ms: number): Promise<number> {
  const before = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const after = cpuTimes();
  return (after.idle - before.idle) / Math.max(1, after.total - before.total);
}

/**
 * Waits (10 s at most) for the run before this one to die down: the requests it left in flight, the commits behind
 * them. Without it the server that came second was measured during the first one's last second (the machine was
 * 21–47 % idle at its start after a write run). Returns the idle share the run starts with. With stress-ng the
 * machine is never idle: one sample, no wait.
 */
async function settle(stressed: boolean): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const idle = await idleShare(500);
    if (stressed || idle >= 0.9 || Date.now() > deadline) return idle;
  }
}

/**
 * A process's /proc/PID/stat: its command name, and the numeric fields after it, from field 3 on (so utime and stime,
 * fields 14 and 15, are [11] and [12]; cutime and cstime, 16 and 17, [13] and [14]). Throws when it is gone.
 */
function procStat(pid: number | string): { comm: string; fields: number[] } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const end = stat.lastIndexOf(')');
  return {
    comm: stat.slice(stat.indexOf('(') + 1, end),
    fields: stat
      .slice(end + 2)
      .split(' ')
      .map(Number),
  };
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux, whatever the kernel's HZ). */
const TICKS = 100;

/** PostgreSQL's own processes, as their command lines begin after `postgres: `; any other is a client's backend. */
const BACKGROUND = [
  'autovacuum worker',
  'autovacuum launcher',
  'checkpointer',
  'background writer',
  'walwriter',
  'logical replication launcher',
];

/**
 * The CPU time PostgreSQL's processes have used so far, by kind (BACKGROUND, or "client backends"), with "ended" for the processes
 * that have exited (an autovacuum worker lives for one table: the postmaster counts its children's time once they are
 * gone). On PostgreSQL, Cofre's rounds share the two cores with PostgreSQL's own maintenance as well: this tells a
 * slow round that overlapped it (reads answered from the nodes' caches do not touch PostgreSQL at all).
 */
function postgresCpu(): Map<string, number> {
  const used = new Map<string, number>();
  const add = (kind: string, ticks: number) => used.set(kind, (used.get(kind) ?? 0) + ticks / TICKS);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const { comm, fields } = procStat(pid);
      if (comm !== 'postgres') continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      const rest = cmdline.startsWith('postgres: ') ? cmdline.slice('postgres: '.length) : undefined;
      const kind = rest === undefined ? undefined : (BACKGROUND.find((k) => rest.startsWith(k)) ?? 'client backends');
      add(kind ?? 'postmaster', fields[11]! + fields[12]!);
      if (!kind) add('ended', fields[13]! + fields[14]!);
    } catch {
      // The process ended while it was read.
    }
  }
  return used;
}

/** The CPU time (s) the processes have used so far, all their threads. */
function processCpu(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const { fields } = procStat(pid);
      ticks += fields[11]! + fields[12]!;
    } catch {
      // Gone.
    }
  }
  return ticks / TICKS;
}

/** What PostgreSQL used during a run (`before` from postgresCpu()), the busiest kinds first. */
function postgresCpuSince(before: Map<string, number>): string {
  const now = postgresCpu();
  const deltas = [...new Set([...before.keys(), ...now.keys()])].map(
    (kind) => [kind, (now.get(kind) ?? 0) - (before.get(kind) ?? 0)] as const,
  );
  // A process that ended meanwhile leaves its kind (a negative delta) and counts whole under "ended": the total nets
  // out what it had used before the run.
  const total = deltas.reduce((sum, [, s]) => sum + s, 0);
  const spent = deltas.filter(([, s]) => s >= 0.01).sort((a, b) => b[1] - a[1]);
  return `PostgreSQL used ${total.toFixed(2)} s of CPU${spent.length > 0 ? ` (${spent.map(([k, s]) => `${k} ${s.toFixed(2)}`).join(', ')})` : ''}`;
}

/** The page cache's data not yet written back (Linux). */
const dirtyKiB = (): string => /^Dirty:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? '?';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const stalls = (disk: DiskProbeResult | undefined) => (disk ? `${disk.stalls} (${disk.longestMs.toFixed(0)})` : '-');

/** Linux's autogroup scheduling (a desktop setting): every session is a scheduling group of its own. */
const AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled';

/**
 * PostgreSQL makes each backend a session of its own (setsid), so with autogroup on, each is a scheduling group of
 * its own, and one that wakes rarely waited 60–130 ms for a core on each wakeup while Cofre's nodes and wrk kept both
 * cores busy (measured during reads: 8 wakeups of a node's listening backend, 0.5–1.2 s in the run queue; with
 * autogroup off, 0–4 ms). A node's ping of its listening connection then went unanswered for 2 s, and the node held
 * its requests until it listened again (bench/README.md, "PostgreSQL's backends starved by autogroup"). Autogroup does
 * not apply to a process in a cgroup of its own with the CPU controller (a systemd unit with CPUWeight=, say). `--no-autogroup` turns it off for the
 * run (root only) and back on after (however the script ends); without it, a warning says it is on.
 */
function autogroupOff(onPostgres: boolean): (() => void) | undefined {
  let enabled: string;
  try {
    enabled = readFileSync(AUTOGROUP, 'utf8').trim();
  } catch {
    return undefined; // not Linux, or a kernel without it
  }
  if (enabled !== '1') return undefined;
  if (!opts['no-autogroup']) {
    if (onPostgres) {
      log(`${AUTOGROUP} is 1: PostgreSQL's backends may wait for a core (see --no-autogroup in bench/README.md)`);
    }
    return undefined;
  }
  writeFileSync(AUTOGROUP, '0');
  log('autogroup scheduling off for this run (--no-autogroup)');
  // Back on however the script ends: an uncaught error or a signal too (a kernel setting outlives the script).
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    try {
      writeFileSync(AUTOGROUP, enabled);
    } catch (err) {
      log(`could not turn autogroup scheduling back on: ${(err as Error).message} (${AUTOGROUP} is 0)`);
    }
  };
  process.once('exit', restore);
  return restore;
}

async function main(): Promise<void> {
  const restoreAutogroup = autogroupOff(opts['cofre-storage'] === 'postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'cofre-vs-openbao-'));
  const servers: Server[] = [];
  let collector: NetServer | undefined;
  // The same clean-up on a signal as at the end: a script stopped by `kill` alone (not its whole process group, as
  // a terminal's Ctrl-C does) would otherwise leave the servers, PostgreSQL, stress-ng and wrk running.
  let cleanedUp: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (cleanedUp ??= (async () => {
      stopping = true;
      restoreAutogroup?.();
      // The last started first: Cofre's nodes before the PostgreSQL they use.
      // One that fails (a PostgreSQL that will not stop, say) must not keep the others running.
      for (const stop of teardown.splice(0).reverse()) {
        await Promise.resolve()
          .then(stop)
          .catch((err: unknown) => log(`clean-up: ${(err as Error).message}`));
      }
      collector?.close();
      rmSync(dir, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the servers`);
      void cleanUp().finally(() => process.exit(128 + osConstants.signals[signal]));
    });
  }
  try {
    if (opts.audit && AUDIT_DEVICE === 'socket') {
      collector = createServer((socket) => socket.on('data', () => undefined));
      await new Promise<void>((resolve) => collector!.listen(0, '127.0.0.1', resolve));
      collectorAddress = `127.0.0.1:${(collector.address() as AddressInfo).port}`;
    }
    const onPostgres = opts['cofre-storage'] === 'postgresql';
    servers.push(await (onPostgres ? startCofreOnPostgres(dir) : startCofre(dir)), await startOpenBao(dir));
    for (const s of servers) {
      log(`${s.name}: writing ${KEYS} secrets${opts.audit ? ` (${AUDIT_DEVICE} audit device on)` : ''}`);
      await prepare(s, dir);
    }
    if (opts.stress && !stopping) {
      const stress = spawn('stress-ng', ['--cpu', opts.stress, '--quiet'], { stdio: 'ignore' });
      teardown.push(() => stress.kill('SIGKILL'));
      log(`stress-ng --cpu ${opts.stress} running beside both servers`);
    }
    const kinds = (opts.only ? [opts.only] : ['reads', 'writes']) as ('reads' | 'writes')[];
    if (Number(opts.warmup) > 0) {
      for (const s of servers) {
        for (const kind of kinds) {
          log(`warm-up: ${s.name} ${kind} for ${opts.warmup} s (not counted)`);
          await wrk(s, kind, dir, Number(opts.warmup));
        }
      }
    }
    const rows: { round: number; kind: string; cofre: Run; openbao: Run }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of kinds) {
        // Alternate which server goes first, so neither always runs on a machine the other just warmed or loaded.
        const order = round % 2 === 1 ? servers : [...servers].reverse();
        const runs: Record<string, Run> = {};
        for (const s of order) {
          // Each run starts with nothing left to write back: the page cache's dirty data of a run before (the other
          // server's audit file) would be written back up to 30 s later, in the middle of this run, and ext4 makes
          // this run's fsyncs wait for it.
          execFileSync('sync');
          const idle = await settle(Boolean(opts.stress));
          log(
            `round ${round}: ${s.name} ${kind} for ${SECONDS} s (load ${loadavg()[0]!.toFixed(2)}, dirty ${dirtyKiB()} KiB, idle ${(idle * 100).toFixed(0)} %)`,
          );
          const pgBefore = onPostgres && s.name === 'Cofre' ? postgresCpu() : undefined;
          // What else ran meanwhile: the other server (idle, but a runtime has work of its own: collections, timers),
          // PostgreSQL's maintenance, and the host (a virtual machine's stolen time).
          const other = servers.find((o) => o !== s)!;
          const otherBefore = processCpu(other.pids);
          const cpuBefore = cpuTimes();
          const probe = await startDiskProbe(dir);
          let run: Run;
          let disk: DiskProbeResult;
          try {
            run = await wrk(s, kind, dir);
          } finally {
            disk = await probe.stop();
          }
          runs[s.name] = { ...run, disk };
          const cpuAfter = cpuTimes();
          const steal = (cpuAfter.steal - cpuBefore.steal) / Math.max(1, cpuAfter.total - cpuBefore.total);
          log(
            `round ${round}: ${s.name} ${kind} done: ${other.name} used ${(processCpu(other.pids) - otherBefore).toFixed(2)} s of CPU, the host stole ${(steal * 100).toFixed(1)} %, the disk probe's fsyncs stalled over ${STALL_MS} ms ${disk.stalls} times of ${disk.syncs} (longest ${disk.longestMs.toFixed(0)} ms)${pgBefore ? `; ${postgresCpuSince(pgBefore)}` : ''}`,
          );
        }
        rows.push({ round, kind, cofre: runs.Cofre!, openbao: runs.OpenBao! });
      }
    }
    const lines = [
      `Cofre vs OpenBao, KV v2, wrk -t${opts.threads} -c${opts.connections} -d${SECONDS}s after a ${opts.warmup} s warm-up; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node.js ${process.version}; ${opts['cofre-storage'] === 'postgresql' ? `Cofre: two nodes on PostgreSQL${opts['pg-socket'] ? ' (Unix socket)' : ''}${opts['fresh-wal'] ? ' (fresh WAL)' : ''}` : `Cofre on SQLite, ${opts['cofre-workers'] ?? 1} server thread(s)`}${opts.stress ? `; stress-ng --cpu ${opts.stress}` : ''}${opts.audit ? `; ${AUDIT_DEVICE} audit on both` : ''}`,
      '',
      `| round | kind | Cofre /s | Cofre p50 / p99 ms | OpenBao /s | OpenBao p50 / p99 ms | throughput × | p99 × | errors | disk stalls > ${STALL_MS} ms (longest) |`,
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ];
    for (const r of rows) {
      lines.push(
        `| ${r.round} | ${r.kind} | ${r.cofre.perSec} | ${fmt(r.cofre.p50ms)} / ${fmt(r.cofre.p99ms)} | ${r.openbao.perSec} | ${fmt(r.openbao.p50ms)} / ${fmt(r.openbao.p99ms)} | ${fmt(r.cofre.perSec / r.openbao.perSec)} | ${fmt(r.cofre.p99ms / r.openbao.p99ms)} | ${r.cofre.errors} / ${r.openbao.errors} | ${stalls(r.cofre.disk)} / ${stalls(r.openbao.disk)} |`,
      );
    }
    lines.push('');
    for (const kind of kinds) {
      const mine = rows.filter((r) => r.kind === kind);
      lines.push(
        `median ${kind}: throughput ${fmt(median(mine.map((r) => r.cofre.perSec / r.openbao.perSec)))} × OpenBao's, p99 ${fmt(median(mine.map((r) => r.cofre.p99ms / r.openbao.p99ms)))} × OpenBao's`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await cleanUp();
  }
}

await main();

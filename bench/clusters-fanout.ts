// Multi-cluster fan-out (issue 20): 1,000 simulated clusters whose agents speak the real protocol with their own
// keys, against a Cofre server process.
//
//   npm run bench:clusters        (builds, then: node --import tsx bench/clusters-fanout.ts)
//
// The server is `cofre server --config` (dist/cli/main.js) on SQLite (or, with BENCH_STORAGE=postgresql, two such
// nodes on one PostgreSQL table, agents split between them). The benchmark registers BENCH_CLUSTERS clusters, each
// with its bootstrap token, and hands them to BENCH_WORKERS agent processes (bench/clusters-agents.ts). Every agent
// generates its X25519 and Ed25519 keys, enrols, logs in with a signature, holds its stream, fetches and opens its
// own bundle (openFetched) and reports the revision it applied: that report is the acknowledgement timed here.
//
// - publish: from just before the placement (selector tier=store, every cluster) is written until every agent has
//   reported revision 1;
// - rotation: from just before a new version of the KV secret the delivery uses is written until every agent has
//   reported the revision it made; BENCH_ROTATIONS times, one after another;
// - idle: server RSS (VmRSS) and CPU (utime + stime from /proc) over BENCH_IDLE_S with every agent connected.
//
// Options (environment): BENCH_CLUSTERS (1000), BENCH_WORKERS (4), BENCH_ROTATIONS (20), BENCH_IDLE_S (30),
// BENCH_CONCURRENCY (enrolments and logins in flight per worker, 16), BENCH_STAGE_TIMEOUT_S (180),
// BENCH_STORAGE (sqlite | postgresql), BENCH_CPU_PROF (a directory for the server's CPU profile), BENCH_SERVER_ROOT (see below), BENCH_TSX=1 (run the server from src/ through tsx instead of dist/).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { apiClient, freePort, tempDir, type Api } from '../test/support.js';

const CLUSTERS = Number(process.env.BENCH_CLUSTERS ?? 1000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 20);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 30);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const STAGE_TIMEOUT_MS = Number(process.env.BENCH_STAGE_TIMEOUT_S ?? 180) * 1000;
const STORAGE = process.env.BENCH_STORAGE ?? 'sqlite';

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ServerProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `cofre server --config` with the given storage block, on a free port; resolves once it answers sys/health. */
async function startServer(dir: string, name: string, storage: string, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, `${name}.hcl`);
  writeFileSync(
    config,
    [
      storage,
      `listener "tcp" {`,
      `  address = "127.0.0.1:${port}"`,
      `  tls_disable = true`,
      `}`,
      `api_addr = "${url}"`,
      `log_level = "warn"`,
    ].join('\n'),
  );
  // BENCH_SERVER_ROOT: a copy of dist/ with a node_modules whose native addon (better-sqlite3) was built for the
  // Node.js running this benchmark (see bench/README.md); by default the build in this checkout.
  const root = process.env.BENCH_SERVER_ROOT ?? '.';
  const entry = process.env.BENCH_TSX ? ['--import', 'tsx', 'src/cli/main.ts'] : [join(root, 'dist/cli/main.js')];
  // BENCH_CPU_PROF=dir: the server writes a V8 CPU profile there when it stops (to find where its time goes).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const child = spawn(process.execPath, [...prof, ...entry, 'server', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server ${name} exited: ${out}`);
    if (
      await fetch(`${url}/v1/sys/health`).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server ${name} did not answer in 30 s: ${out}`);
    }
    await sleep(100);
  }
  return {
    url,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** VmRSS (MiB) and user + system CPU seconds of a process, from /proc. */
function usage(pid: number): { rssMiB: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return { rssMiB: Math.round(rssKb / 1024), cpuS: ticks / 100 };
}

/** The server's V8 heap (used, total) and external memory in MiB, from its Prometheus metrics. */
async function heap(url: string, token: string): Promise<{ usedMiB: number; totalMiB: number; externalMiB: number }> {
  const res = await fetch(`${url}/v1/sys/metrics?format=prometheus`, { headers: { 'x-vault-token': token } });
  const text = await res.text();
  const metric = (name: string): number =>
    Math.round(Number(new RegExp(`^cofre_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20);
  return {
    usedMiB: metric('nodejs_heap_size_used_bytes'),
    totalMiB: metric('nodejs_heap_size_total_bytes'),
    externalMiB: metric('nodejs_external_memory_bytes'),
  };
}

async function must(api: Api, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await api.call(method, path, body === undefined ? {} : { body });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  return res.body;
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

/** What every agent reported last, and waiters for "every agent at revision ≥ r". */
class Acks {
  readonly revision = new Int32Array(CLUSTERS);
  readonly at = new Float64Array(CLUSTERS);
  errors: string[] = [];
  private waiter: { target: number; resolve: () => void } | undefined;

  record(acks: [number, number, number][]): void {
    for (const [index, revision, at] of acks) {
      if (revision > this.revision[index]!) {
        this.revision[index] = revision;
        this.at[index] = at;
      }
    }
    if (this.waiter && this.count(this.waiter.target) === CLUSTERS) this.waiter.resolve();
  }

  count(target: number): number {
    let n = 0;
    for (const r of this.revision) if (r >= target) n++;
    return n;
  }

  /** Resolves with the time of the last acknowledgement once every agent reached `target`, or throws on timeout. */
  async all(target: number): Promise<number> {
    if (this.count(target) < CLUSTERS) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.waiter = { target, resolve })),
        new Promise<void>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`only ${this.count(target)} of ${CLUSTERS} agents reached revision ${target}`)),
            STAGE_TIMEOUT_MS,
          );
        }),
      ]).finally(() => {
        clearTimeout(timer);
        this.waiter = undefined;
      });
    }
    let last = 0;
    for (let i = 0; i < CLUSTERS; i++) last = Math.max(last, this.at[i]!);
    return last;
  }
}

async function main(): Promise<void> {
  const dir = tempDir('bench-clusters');
  const servers: ServerProcess[] = [];
  const workers: ChildProcess[] = [];
  let db: { url: string; stop(): Promise<void> } | undefined;
  try {
    if (STORAGE === 'postgresql') {
      const { startPostgres } = await import('../scripts/test-databases.js');
      db = await startPostgres({ durable: true });
      const block = `storage "postgresql" {\n  table = "cofre_bench"\n}`;
      for (const name of ['n1', 'n2']) {
        servers.push(await startServer(dir, name, block, { COFRE_PG_CONNECTION_URL: db.url }));
      }
    } else {
      servers.push(await startServer(dir, 'n1', `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}`, {}));
    }
    const first = apiClient(servers[0]!.url, '');
    const init = await must(first, 'PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 });
    const token = init.root_token as string;
    for (const server of servers) {
      await must(apiClient(server.url, ''), 'PUT', 'sys/unseal', { key: (init.keys as string[])[0] });
    }
    const api = apiClient(servers[0]!.url, token);
    await must(api, 'POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
    let version = 0;
    const writeSecret = () =>
      must(api, 'POST', 'secret/data/bench/app', { data: { username: 'bench', password: `pw-${++version}` } });
    await writeSecret();
    await must(api, 'PUT', 'sys/cofre/deliveries/bench-app', {
      namespace: 'shop',
      items: [
        { name: 'app-db', mode: 'secret', kv: { mount: 'secret', path: 'bench/app' } },
        { name: 'app-config', mode: 'configmap', literal: { LOG_LEVEL: 'info' } },
      ],
      rollout: [{ kind: 'Deployment', name: 'app' }],
    });

    log(`registering ${CLUSTERS} clusters`);
    const bootstrap: string[] = [];
    for (let i = 0; i < CLUSTERS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, CLUSTERS - i) }, async (_, j) => {
          const body = await must(api, 'PUT', `sys/cofre/clusters/store-${i + j}`, {
            labels: { tier: 'store', region: (i + j) % 2 ? 'eu' : 'us' },
          });
          bootstrap[i + j] = (body.data as { bootstrap_token: string }).bootstrap_token;
        }),
      );
    }
    const pids = servers.map((s) => s.child.pid!);
    const before = pids.map(usage);
    const beforeHeap = await Promise.all(servers.map((server) => heap(server.url, token)));

    log(`starting ${WORKERS} agent processes`);
    const acks = new Acks();
    let ready = 0;
    let allReady: () => void = () => undefined;
    const readyPromise = new Promise<void>((resolve) => (allReady = resolve));
    for (let w = 0; w < WORKERS; w++) {
      const worker = fork(join(import.meta.dirname, 'clusters-agents.ts'), [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      workers.push(worker);
      worker.on('message', (m: { type: string; acks?: [number, number, number][]; message?: string }) => {
        if (m.type === 'acks') acks.record(m.acks!);
        else if (m.type === 'ready' && ++ready === WORKERS) allReady();
        else if (m.type === 'error') {
          acks.errors.push(m.message!);
          if (acks.errors.length <= 10) log(`agent error: ${m.message}`);
        } else if (m.type === 'log') log(m.message!);
      });
      const agents = [];
      for (let i = w; i < CLUSTERS; i += WORKERS) {
        // Agents spread over the nodes: agent i talks to node i mod nodes.
        agents.push({
          index: i,
          name: `store-${i}`,
          address: servers[i % servers.length]!.url,
          bootstrapToken: bootstrap[i],
        });
      }
      worker.send({ type: 'start', agents, concurrency: CONCURRENCY });
    }
    const connectStart = Date.now();
    await readyPromise;
    const connectMs = Date.now() - connectStart;
    log(`${CLUSTERS} agents enrolled, logged in and streaming in ${connectMs} ms`);
    await sleep(2000);
    const connectedRss = pids.map(usage);
    const connectedHeap = await Promise.all(servers.map((server) => heap(server.url, token)));

    log('publishing');
    const publishStart = Date.now();
    await must(api, 'PUT', 'sys/cofre/placements/bench-stores', {
      delivery: 'bench-app',
      selector: { matchLabels: { tier: 'store' } },
    });
    let revision = ((await must(api, 'GET', 'sys/cofre/deliveries/bench-app')).data as { revision: number }).revision;
    const publishMs = (await acks.all(revision)) - publishStart;
    log(`publish to ${CLUSTERS}: ${publishMs} ms`);

    const rotations: number[] = [];
    for (let r = 0; r < ROTATIONS; r++) {
      await sleep(500);
      const start = Date.now();
      await writeSecret();
      revision++;
      rotations.push((await acks.all(revision)) - start);
      log(`rotation ${r + 1}: ${rotations.at(-1)} ms`);
    }
    const delivery = (await must(api, 'GET', 'sys/cofre/deliveries/bench-app')).data as { revision: number };
    if (delivery.revision !== revision)
      throw new Error(`delivery at revision ${delivery.revision}, expected ${revision}`);

    log(`idle for ${IDLE_S} s`);
    await sleep(2000);
    const idleStart = pids.map(usage);
    const idleT0 = Date.now();
    await sleep(IDLE_S * 1000);
    const idleEnd = pids.map(usage);
    const idleHeap = await Promise.all(servers.map((server) => heap(server.url, token)));
    const idleWall = (Date.now() - idleT0) / 1000;

    // Cross-check with the server's own view: the placement status has every cluster at the last revision.
    const status = (await must(api, 'GET', 'sys/cofre/placements/bench-stores')).data as {
      status: { clusters: Record<string, { revision: number }> };
    };
    const atLast = Object.values(status.status.clusters).filter((c) => c.revision === revision).length;

    const sorted = [...rotations].sort((a, b) => a - b);
    const machine = `${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
    console.log(
      JSON.stringify({
        machine,
        node: process.version,
        storage: STORAGE,
        nodes: servers.length,
        clusters: CLUSTERS,
        workers: WORKERS,
        connect_ms: connectMs,
        publish_ms: publishMs,
        rotation_ms: { p50: pct(sorted, 50), p99: pct(sorted, 99), max: sorted.at(-1), all: rotations },
        server: pids.map((_, i) => ({
          rss_before_agents_mib: before[i]!.rssMiB,
          rss_connected_mib: connectedRss[i]!.rssMiB,
          rss_idle_mib: idleEnd[i]!.rssMiB,
          heap_before_agents: beforeHeap[i],
          heap_connected: connectedHeap[i],
          heap_idle: idleHeap[i],
          idle_cpu_percent: Math.round((1000 * (idleEnd[i]!.cpuS - idleStart[i]!.cpuS)) / idleWall) / 10,
        })),
        placement_status_at_last_revision: atLast,
        agent_errors: acks.errors.length,
      }),
    );
  } finally {
    for (const worker of workers) {
      if (worker.connected) worker.send({ type: 'stop' });
    }
    await sleep(300);
    for (const worker of workers) worker.kill();
    await Promise.all(servers.map((s) => s.stop()));
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

// Operator benchmark (issue 4): cold sync time and operator RSS for N CofreSecrets, and rotation-to-Secret latency.
//
//   npm run build && node --import tsx bench/operator.ts
//
// A real control plane (scripts/test-cluster.ts, no controller manager), the chart's CRDs, a real Cofre server in
// this process with Kubernetes auth configured as test/operator.test.ts does, N KV v2 secrets and N CofreSecrets in
// one namespace. The operator runs as a separate process (`cofre operator kubernetes`, the built dist/cli/main.js
// when present, else src/cli/main.ts through tsx), so its RSS is its own.
//
// Options (environment): BENCH_SECRETS (1000), BENCH_ROTATIONS (100), BENCH_BATCH (parallel creates, 50),
// BENCH_CONCURRENCY (the operator's --concurrency; its default when unset), BENCH_OPERATOR_NODE_ARGS (Node.js
// options of the operator process, e.g. --cpu-prof), BENCH_TSX=1 (run the operator through
// tsx even when dist/ exists), BENCH_SYNC_TIMEOUT_S (600).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { installCrds } from '../scripts/cofre-crds.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { enableKubernetesAuth } from '../test/kube-support.js';
import { freePort, startServer, type InProcessServer } from '../test/support.js';

const N = Number(process.env.BENCH_SECRETS ?? 1000);
const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 100);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const SYNC_TIMEOUT_MS = Number(process.env.BENCH_SYNC_TIMEOUT_S ?? 600) * 1000;
const CONCURRENCY = process.env.BENCH_CONCURRENCY;
const GROUP = 'cofre.dev';
const VERSION = 'v1alpha1';
const NS = 'bench';
const MANAGED = 'app.kubernetes.io/managed-by=cofre';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number) => Math.round(ms) / 1000;
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

async function inBatches(n: number, size: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < n; start += size) {
    await Promise.all(Array.from({ length: Math.min(size, n - start) }, (_, j) => fn(start + j)));
  }
}

function memory(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: Math.round(kb('VmRSS') / 102.4) / 10, hwmMiB: Math.round(kb('VmHWM') / 102.4) / 10 };
}

/** CPU seconds (user + system) the process has used so far, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command; in clock ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const value = (i: number, version: string) => `v-${i}-${version}`;
const decodedValue = (s: k8s.V1Secret) => {
  const v = s.data?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString();
};

async function main(): Promise<void> {
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    ramGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
  let cluster: TestCluster | undefined;
  let srv: InProcessServer | undefined;
  let operator: ChildProcess | undefined;
  let watchAbort: AbortController | undefined;
  let operatorOutput = '';
  try {
    let t = Date.now();
    cluster = await startCluster({ name: 'bench-operator', controllerManager: false });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await installCrds(kc);
    log(`cluster and CRDs up in ${secs(Date.now() - t)} s`);

    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'reader' } } });
    srv = await startServer();
    const api = srv.api;
    const ok = (res: { status: number; text: string }) => {
      if (res.status >= 300) throw new Error(`Cofre API ${res.status}: ${res.text}`);
    };
    await enableKubernetesAuth(api, cluster, kc);
    ok(
      await api.call('PUT', 'sys/policies/acl/bench-read', {
        body: { policy: 'path "secret/data/bench/*" {\n  capabilities = ["read"]\n}\n' },
      }),
    );
    ok(
      await api.call('POST', `auth/kubernetes/role/${NS}`, {
        body: {
          bound_service_account_names: ['reader'],
          bound_service_account_namespaces: [NS],
          audience: 'cofre',
          token_policies: ['bench-read'],
          token_ttl: '1h',
        },
      }),
    );
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'cofreconnections',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'CofreConnection',
        metadata: { name: 'main' },
        spec: { address: srv.url, auth: { kubernetes: { role: NS, serviceAccountName: 'reader' } } },
      },
    });

    const kvWrite = async (i: number, version: string) =>
      ok(await api.call('POST', `secret/data/bench/k${i}`, { body: { data: { value: value(i, version) } } }));

    t = Date.now();
    await inBatches(N, BATCH, (i) => kvWrite(i, '1'));
    const kvWriteMs = Date.now() - t;
    log(`${N} KV secrets written in ${secs(kvWriteMs)} s`);

    t = Date.now();
    await inBatches(N, BATCH, (i) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: 'cofresecrets',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'CofreSecret',
          metadata: { name: `cs-${i}` },
          spec: {
            connectionRef: { name: 'main' },
            source: { mount: 'secret', path: `bench/k${i}` },
            target: { name: `sec-${i}` },
          },
        },
      }),
    );
    const createMs = Date.now() - t;
    log(
      `${N} CofreSecrets created in ${secs(createMs)} s (${Math.round(N / (createMs / 1000))}/s, batches of ${BATCH})`,
    );

    // One watch on the managed Secrets, opened before the operator starts, times both the cold sync (every Secret
    // first seen with its value) and each rotation (as the API server delivers the update). BENCH_SYNC_POLL=1 instead
    // polls a full list every 100 ms for the cold sync (heavier on the API server: it slowed the sync here).
    const pollSync = process.env.BENCH_SYNC_POLL === '1';
    const synced = new Set<string>();
    let firstSecretAt: number | undefined;
    let allSyncedAt: number | undefined;
    const waiters = new Map<string, { want: string; resolve: (at: number) => void }>();
    const before = await core.listNamespacedSecret({ namespace: NS, labelSelector: MANAGED });
    watchAbort = await new k8s.Watch(kc).watch(
      `/api/v1/namespaces/${NS}/secrets`,
      { labelSelector: MANAGED, resourceVersion: before.metadata?.resourceVersion, allowWatchBookmarks: false },
      (_type: string, obj: k8s.V1Secret) => {
        const name = obj.metadata?.name ?? '';
        const got = decodedValue(obj);
        if (!synced.has(name) && got === value(Number(name.slice(4)), '1')) {
          synced.add(name);
          firstSecretAt ??= Date.now();
          if (synced.size === N) allSyncedAt = Date.now();
        }
        const w = waiters.get(name);
        if (w && got === w.want) {
          waiters.delete(name);
          w.resolve(Date.now());
        }
      },
      (err: unknown) => {
        if (err && !watchAbort?.signal.aborted) log(`watch ended: ${String(err)}`);
      },
    );

    // The operator, as its own process.
    const built = existsSync('dist/cli/main.js') && process.env.BENCH_TSX !== '1';
    const metricsPort = await freePort();
    const args = [
      // e.g. BENCH_OPERATOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the operator.
      ...(process.env.BENCH_OPERATOR_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...(built ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts']),
      ...['operator', 'kubernetes', '--kubeconfig', cluster.kubeconfigPath],
      ...['--metrics-bind-address', `127.0.0.1:${metricsPort}`, '--log-level', 'warn'],
      ...(CONCURRENCY ? ['--concurrency', CONCURRENCY] : []),
    ];
    // CPU of everything else the sync needs, to tell the operator's cost from the control plane's and Cofre's.
    const clusterPids = readFileSync(`${cluster.dir}/pids`, 'utf8').split('\n').filter(Boolean).map(Number);
    const clusterCpu0 = clusterPids.reduce((a, p) => a + cpuSeconds(p), 0);
    const benchCpu0 = process.cpuUsage();
    const t0 = Date.now();
    operator = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    operator.stdout!.on('data', (d: Buffer) => (operatorOutput += d.toString()));
    operator.stderr!.on('data', (d: Buffer) => (operatorOutput += d.toString()));
    const pid = operator.pid!;
    log(`operator started (pid ${pid}, ${built ? 'dist/cli/main.js' : 'tsx src/cli/main.ts'})`);

    // Cold sync: until all N Secrets hold their value. RSS and /readyz are sampled every 100 ms meanwhile.
    let readyMs: number | undefined;
    let peakDuringSync = 0;
    let listCalls = 0;
    for (;;) {
      if (operator.exitCode !== null) throw new Error(`operator exited (${operator.exitCode}): ${operatorOutput}`);
      if (readyMs === undefined) {
        const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined);
        if (ready?.status === 200) readyMs = Date.now() - t0;
      }
      peakDuringSync = Math.max(peakDuringSync, memory(pid).rssMiB);
      if (pollSync) {
        const list = await core.listNamespacedSecret({ namespace: NS, labelSelector: MANAGED });
        listCalls++;
        const good = list.items.filter((s) => decodedValue(s) === value(Number(s.metadata?.name?.slice(4)), '1'));
        if (good.length > 0) firstSecretAt ??= Date.now();
        if (good.length === N) allSyncedAt ??= Date.now();
      }
      if (allSyncedAt !== undefined) break;
      if (Date.now() - t0 > SYNC_TIMEOUT_MS)
        throw new Error(`cold sync: ${synced.size}/${N} after ${SYNC_TIMEOUT_MS} ms`);
      await sleep(100);
    }
    const coldSyncMs = allSyncedAt - t0;
    const syncCpu = cpuSeconds(pid);
    const clusterCpu = Math.round((clusterPids.reduce((a, p) => a + cpuSeconds(p), 0) - clusterCpu0) * 100) / 100;
    const used = process.cpuUsage(benchCpu0);
    const benchCpu = Math.round((used.user + used.system) / 1e4) / 100;
    const firstSecretMs = firstSecretAt === undefined ? undefined : firstSecretAt - t0;
    const afterSync = memory(pid);
    // Cross-check with one list: the watch must not have counted anything the API server does not hold.
    const check = await core.listNamespacedSecret({ namespace: NS, labelSelector: MANAGED });
    const holding = check.items.filter((s) => decodedValue(s) === value(Number(s.metadata?.name?.slice(4)), '1'));
    if (holding.length !== N) throw new Error(`after the sync only ${holding.length}/${N} Secrets hold their value`);
    log(
      `cold sync of ${N} in ${secs(coldSyncMs)} s (${pollSync ? `${listCalls} list polls` : 'watch'}); RSS ${afterSync.rssMiB} MiB`,
    );

    // Idle a moment so the settled RSS is not the sync's transient.
    await sleep(5_000);
    const settled = memory(pid);

    const latencies: number[] = [];
    for (let r = 0; r < ROTATIONS; r++) {
      const i = (r * 7919) % N; // a different secret each time, spread over the set
      const want = value(i, `r${r}`);
      const seen = new Promise<number>((resolve) => waiters.set(`sec-${i}`, { want, resolve }));
      const timeout = sleep(10_000).then(() => -1);
      const tw = Date.now();
      await kvWrite(i, `r${r}`);
      const at = await Promise.race([seen, timeout]);
      if (at < 0) throw new Error(`rotation ${r}: Secret sec-${i} did not get the new value in 10 s`);
      latencies.push(at - tw);
      await sleep(20);
    }
    watchAbort.abort();
    const afterRotations = memory(pid);
    const sorted = [...latencies].sort((a, b) => a - b);

    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    const metric = (name: string) =>
      metrics
        .split('\n')
        .filter((l) => l.startsWith(name) && !l.startsWith(`${name}_`))
        .reduce((a, l) => a + Number(l.split(' ').pop()), 0);

    const summary = {
      machine,
      operatorRuntime: built ? 'node dist/cli/main.js' : 'node --import tsx src/cli/main.ts',
      cofreSecrets: N,
      concurrency: CONCURRENCY ?? 'default',
      kvWriteSeconds: secs(kvWriteMs),
      creation: { seconds: secs(createMs), perSecond: Math.round(N / (createMs / 1000)), batch: BATCH },
      coldSync: {
        measuredBy: pollSync ? 'list poll every 100 ms' : 'watch',
        seconds: secs(coldSyncMs),
        perSecond: Math.round(N / (coldSyncMs / 1000)),
        readyzSeconds: readyMs === undefined ? null : secs(readyMs),
        firstSecretSeconds: firstSecretMs === undefined ? null : secs(firstSecretMs),
        operatorCpuSeconds: syncCpu,
        // etcd and kube-apiserver; the benchmark process holds the Cofre server and the timing watch.
        controlPlaneCpuSeconds: clusterCpu,
        cofreAndBenchCpuSeconds: benchCpu,
        loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10,
      },
      rssMiB: {
        peakSampledDuringSync: peakDuringSync,
        afterColdSync: afterSync.rssMiB,
        settled5s: settled.rssMiB,
        afterRotations: afterRotations.rssMiB,
        hwm: afterRotations.hwmMiB,
      },
      rotations: {
        count: latencies.length,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted[sorted.length - 1] ?? null,
        minMs: sorted[0] ?? null,
        // In order, so outliers can be placed in time.
        allMs: latencies.join(' '),
      },
      operatorMetrics: {
        reconcileTotal: metric('cofre_operator_reconcile_total'),
        reconcileErrorsTotal: metric('cofre_operator_reconcile_errors_total'),
        targetWritesTotal: metric('cofre_operator_target_writes_total'),
        changeEventsTotal: metric('cofre_operator_change_events_total'),
        changeStreamsConnected: metric('cofre_operator_change_streams_connected'),
        kubeConnectionsOpened: metric('cofre_operator_kube_connections_opened_total'),
      },
    };
    console.log(JSON.stringify(summary, null, 2));
    const warnings = operatorOutput.trim().split('\n').filter(Boolean);
    if (warnings.length) log(`operator wrote ${warnings.length} log lines; first: ${warnings[0]!.slice(0, 300)}`);
  } finally {
    watchAbort?.abort();
    if (operator && operator.exitCode === null) {
      const exited = new Promise((r) => operator!.once('exit', r));
      operator.kill('SIGTERM');
      if ((await Promise.race([exited, sleep(5_000).then(() => 'timeout')])) === 'timeout') operator.kill('SIGKILL');
    }
    await srv?.stop();
    await cluster?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});

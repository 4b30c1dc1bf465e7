// Injector benchmark (issue 12): admission latency of pod creations with and without the webhook, and the
// injector's RSS.
//
//   node --import tsx bench/injector.ts
//
// A real control plane (scripts/test-cluster.ts, no controller manager), `cofre injector` as its own process (the
// built dist/cli/main.js when present, else src/cli/main.ts through tsx) on loopback with a CA made here, and its
// MutatingWebhookConfiguration as the chart writes it. Each round creates BENCH_CONCURRENCY pods at once, first
// ordinary pods (the webhook is not called: the baseline), then opted-in pods (files, an env item and the native
// sidecar), and times each create from the client. The injector's own time per review comes from its log lines.
// Pods name a node that does not exist, so nothing runs.
//
// Options (environment): BENCH_CONCURRENCY (50), BENCH_ROUNDS (4), BENCH_TSX=1.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { loopbackWebhook, spawnInjector } from '../test/injector-webhook.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const NS = 'bench';
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(samples: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: sorted.length, p50: r(percentile(sorted, 50)), p99: r(percentile(sorted, 99)), max: r(sorted.at(-1)!) };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 102.4) / 10;
}

const OPTED_IN: k8s.V1ObjectMeta = {
  labels: { 'cofre.dev/inject': 'true' },
  annotations: {
    'cofre.dev/role': 'app',
    'cofre.dev/sidecar': 'true',
    'cofre.dev/secret-db': 'secret/app/db',
    'cofre.dev/keys-db': 'password',
    'cofre.dev/creds-pg': 'database/creds/app',
    'cofre.dev/template-pg': 'user={{ .Data.username }} password={{ .Data.password }}',
    'cofre.dev/secret-api': 'secret/app/api',
    'cofre.dev/env-api': 'API_KEY=key',
  },
};

async function main(): Promise<void> {
  let cluster: TestCluster | undefined;
  let injector: ChildProcess | undefined;
  try {
    cluster = await startCluster({ name: 'bench-injector', controllerManager: false });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    // No controller manager: the namespace's default ServiceAccount, which pods need, is made here.
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'default' } } });

    const reviewMs: number[] = [];
    let pending = '';
    const built = existsSync('dist/cli/main.js') && process.env.BENCH_TSX !== '1';
    const spawned = await spawnInjector({
      dir: cluster.dir,
      args: ['--agent-image', 'cofre:bench', '--cofre-address', 'https://cofre.cofre.svc:8200'],
      built,
      onStdout: (d) => {
        pending += d.toString();
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          const entry = JSON.parse(line) as { msg?: string; decision?: string; ms?: number };
          if (entry.msg === 'admission' && entry.decision === 'injected') reviewMs.push(entry.ms!);
        }
      },
    });
    injector = spawned.child;
    const { port, caCert: ca } = spawned;
    await kc.makeApiClient(k8s.AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: loopbackWebhook('cofre-injector-bench', port, ca),
    });

    const create = async (name: string, meta: k8s.V1ObjectMeta): Promise<number> => {
      const started = performance.now();
      await core.createNamespacedPod({
        namespace: NS,
        body: {
          metadata: { name, ...meta },
          spec: {
            nodeName: 'no-such-node',
            containers: [{ name: 'app', image: 'app:1', command: ['/app/server'], args: ['--port', '8080'] }],
          },
        },
      });
      return performance.now() - started;
    };
    const wave = (prefix: string, meta: k8s.V1ObjectMeta) =>
      Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => create(`${prefix}-${i}`, meta)));

    // A first wave of each warms the API server's caches and the injector's JIT; it is not counted.
    await wave('warm-plain', {});
    await wave('warm-inject', OPTED_IN);
    reviewMs.length = 0;
    const plain: number[] = [];
    const injected: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      plain.push(...(await wave(`plain-${round}`, {})));
      injected.push(...(await wave(`inject-${round}`, OPTED_IN)));
      log(`round ${round + 1}/${ROUNDS} done`);
    }
    const check = await core.readNamespacedPod({ name: 'inject-0-0', namespace: NS });
    if (check.spec?.initContainers?.[0]?.name !== 'cofre-agent-init') throw new Error('the pods were not injected');

    const result = {
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version },
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      injector: built ? 'dist/cli/main.js' : 'tsx src/cli/main.ts',
      createMs: { withoutWebhook: summary(plain), injected: summary(injected) },
      injectorReviewMs: summary(reviewMs),
      injectorRssMiB: rssMiB(injector.pid!),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    injector?.kill('SIGTERM');
    await cluster?.stop();
  }
}

await main();

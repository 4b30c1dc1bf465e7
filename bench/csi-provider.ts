// Mount latency and throughput of `cofre csi-provider`, driven as the Secrets Store CSI Driver drives it: a real
// control plane (scripts/test-cluster.ts) for the service-account tokens, an in-process Cofre server on SQLite, the
// provider as its own process, and Mounts of three objects (one login, three reads, one revoke each) sent over its
// unix socket, first one at a time, then BENCH_CONCURRENCY at once.
//   node --import tsx bench/csi-provider.ts          (BENCH_MOUNTS 300, BENCH_CONCURRENCY 16)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import { startCluster } from '../scripts/test-cluster.js';
import { providerService, type MountRequestMessage, type MountResponseMessage } from '../src/kube/csi-provider/grpc.js';
import { enableKubernetesAuth } from '../test/kube-support.js';
import { startServer, writeOk } from '../test/support.js';

const MOUNTS = Number(process.env.BENCH_MOUNTS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const summary = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: +percentile(s, 0.5).toFixed(1),
    p99: +percentile(s, 0.99).toFixed(1),
    max: +s.at(-1)!.toFixed(1),
  };
};

const cluster = await startCluster({ name: 'bench-csi', controllerManager: false });
const srv = await startServer();
const dir = mkdtempSync(path.join(os.tmpdir(), 'cofre-bench-csi-'));
const provider = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'csi-provider',
    '--provider-dir',
    dir,
    '--cofre-address',
    srv.url,
    '--no-kubernetes',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
try {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'apps' } } });
  await core.createNamespacedServiceAccount({ namespace: 'apps', body: { metadata: { name: 'web' } } });
  await enableKubernetesAuth(srv.api, cluster, kc);
  await writeOk(srv.api, 'sys/policies/acl/web', {
    policy: 'path "secret/data/web/*" {\n  capabilities = ["read"]\n}\n',
  });
  await writeOk(srv.api, 'auth/kubernetes/role/web', {
    bound_service_account_names: ['web'],
    bound_service_account_namespaces: ['apps'],
    audience: 'cofre',
    token_policies: ['web'],
    token_ttl: '10m',
  });
  for (const name of ['db', 'api', 'tls'])
    await writeOk(srv.api, `secret/data/web/${name}`, { data: { value: `${name}-value` } });
  const jwt = (
    await core.createNamespacedServiceAccountToken({
      namespace: 'apps',
      name: 'web',
      body: { spec: { audiences: ['cofre'], expirationSeconds: 3600 } },
    })
  ).status!.token;
  const socket = path.join(dir, 'cofre.sock');
  for (let i = 0; !existsSync(socket); i++) {
    if (i > 300) throw new Error('the provider did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const Client = providerService();
  const client = new Client(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as {
    Mount(req: MountRequestMessage, cb: (err: grpc.ServiceError | null, res: MountResponseMessage) => void): void;
    close(): void;
  };
  const request: MountRequestMessage = {
    attributes: JSON.stringify({
      roleName: 'web',
      audience: 'cofre',
      objects: ['db', 'api', 'tls']
        .map((n) => `- objectName: ${n}\n  secretPath: secret/data/web/${n}\n  secretKey: value\n`)
        .join(''),
      'csi.storage.k8s.io/pod.name': 'web-0',
      'csi.storage.k8s.io/pod.namespace': 'apps',
      'csi.storage.k8s.io/serviceAccount.name': 'web',
      'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ cofre: { token: jwt } }),
    }),
    secrets: '{}',
    target_path: '/tmp/x',
    permission: '420',
    current_object_version: [],
  };
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      client.Mount(request, (err, res) => {
        if (err) reject(err);
        else if (res.files.length !== 3) reject(new Error('three files expected'));
        else resolve(performance.now() - started);
      });
    });
  for (let i = 0; i < 20; i++) await one(); // warm-up
  const sequential: number[] = [];
  for (let i = 0; i < MOUNTS; i++) sequential.push(await one());
  const concurrent: number[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < MOUNTS) concurrent.push(await one());
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  client.close();
  process.stdout.write(
    `${JSON.stringify(
      {
        machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, load: os.loadavg() },
        objectsPerMount: 3,
        sequentialMs: summary(sequential),
        concurrent: {
          concurrency: CONCURRENCY,
          ms: summary(concurrent),
          mountsPerSecond: +(MOUNTS / seconds).toFixed(1),
        },
      },
      null,
      2,
    )}\n`,
  );
} finally {
  provider.kill('SIGTERM');
  await srv.stop();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}

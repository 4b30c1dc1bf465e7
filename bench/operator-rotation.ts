// Operator benchmark (issue 13): how soon a database credential's rotation reaches its Secret, and how long a
// dynamic credential's re-issue takes to become a finished rollout with the old role dropped.
//
//   node --import tsx bench/operator-rotation.ts
//
// A real control plane with the controller manager (scripts/test-cluster.ts; no node, so pods stay Pending), a real
// PostgreSQL (scripts/test-databases.ts), a Cofre server in this process with the database engine and Kubernetes
// auth configured as test/operator-dynamic.test.ts does, and the operator in this process (startOperator), with its
// default rollout batching (2 s window).
//
// - Static rotation to Secret: ROTATIONS times, one after another, `database/rotate-role/app` is called; the latency
//   runs from just before that request until a watch on the Secret delivers the new password (the rotation, its
//   change event, the operator's read and apply, the API server's watch delivery).
// - Dynamic re-issue to rollout: a CofreSecret on a role with a short max TTL, rolling a Deployment with strategy
//   Recreate. For each of REISSUES re-issues: from the Secret holding a new credential (watch) to the Deployment's
//   pod template carrying the new revision (rollout started; includes the batch window), to status.rollout
//   .finishedTime (no pod on the old revision), and to the old role gone from pg_roles.
//
// Options (environment): BENCH_ROTATIONS (100), BENCH_REISSUES (5), BENCH_MAX_TTL (24s; re-issued two thirds in).
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { installCrds } from '../scripts/cofre-crds.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { startOperator, type Operator } from '../src/kube/operator/index.js';
import { ROLLOUT_ANNOTATION } from '../src/kube/operator/types.js';
import { postgres as flavor } from '../test/database-flavors.js';
import { enableKubernetesAuth } from '../test/kube-support.js';
import { startServer, writeOk, type InProcessServer } from '../test/support.js';

const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 100);
const REISSUES = Number(process.env.BENCH_REISSUES ?? 5);
const MAX_TTL = process.env.BENCH_MAX_TTL ?? '24s';
const GROUP = 'cofre.dev';
const VERSION = 'v1alpha1';
const NS = 'bench';
const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'bench-admin-pw-do-not-leak';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000, every = 10): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

/** The password of each Secret as the API server's watch delivers it, with when it arrived. */
class SecretWatch {
  private readonly seen = new Map<string, { username: string; password: string; at: number }>();
  private readonly waiters: (() => void)[] = [];
  private req?: { abort(): void };

  async start(kc: k8s.KubeConfig): Promise<void> {
    this.req = await new k8s.Watch(kc).watch(
      `/api/v1/namespaces/${NS}/secrets`,
      {},
      (_type, obj: k8s.V1Secret) => {
        const field = (k: string) => Buffer.from(obj.data?.[k] ?? '', 'base64').toString();
        this.seen.set(obj.metadata!.name!, {
          username: field('username'),
          password: field('password'),
          at: Date.now(),
        });
        for (const w of this.waiters.splice(0)) w();
      },
      () => undefined,
    );
  }

  /** Waits until the Secret holds a password other than `not`; returns it and when it arrived. */
  async changed(name: string, not: string | undefined, ms = 60_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = this.seen.get(name);
      if (s?.password && s.password !== not) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for Secret ${name} to change`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  stop(): void {
    this.req?.abort();
  }
}

async function main(): Promise<void> {
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}, Node.js ${process.version}`;
  log(`machine: ${machine}`);
  let cluster: TestCluster | undefined;
  let db: TestDatabase | undefined;
  let srv: InProcessServer | undefined;
  let operator: Operator | undefined;
  const watch = new SecretWatch();
  try {
    [cluster, db] = await Promise.all([
      startCluster({ name: 'bench-rotation', controllerManager: true }),
      startPostgres(),
    ]);
    for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await installCrds(kc);

    srv = await startServer();
    const api = srv.api;
    await enableKubernetesAuth(api, cluster, kc);
    await writeOk(api, 'sys/mounts/database', { type: 'database' });
    await writeOk(api, 'database/config/main', {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    await writeOk(api, 'database/roles/short', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '6s',
      max_ttl: MAX_TTL,
    });
    for (const sql of flavor.createUser('static_app', 'bench-original-pw')) await db.query(sql);
    await writeOk(api, 'database/static-roles/app', { db_name: 'main', username: 'static_app', rotation_period: '1h' });
    await writeOk(api, 'sys/policies/acl/bench', {
      policy: [
        'path "database/creds/*" { capabilities = ["read"] }',
        'path "database/static-creds/*" { capabilities = ["read"] }',
        'path "sys/leases/lookup" { capabilities = ["update"] }',
        'path "sys/leases/renew/database/creds/*" { capabilities = ["update"] }',
        'path "sys/leases/revoke/database/creds/*" { capabilities = ["update"] }',
      ].join('\n'),
    });
    await writeOk(api, 'auth/kubernetes/role/bench', {
      bound_service_account_names: ['reader'],
      bound_service_account_namespaces: [NS],
      audience: 'cofre',
      token_policies: ['bench'],
      token_ttl: '1h',
    });
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'reader' } } });
    const create = (plural: string, kind: string, name: string, spec: object) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec },
      });
    await create('cofreconnections', 'CofreConnection', 'main', {
      address: srv.url,
      auth: { kubernetes: { role: 'bench', serviceAccountName: 'reader' } },
    });
    for (const name of ['static-web', 'dyn-web']) {
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name },
          spec: {
            replicas: 1,
            strategy: { type: 'Recreate' },
            selector: { matchLabels: { app: name } },
            template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: 'nginx' }] } },
          },
        },
      });
    }
    await watch.start(kc);
    operator = await startOperator({ kubeConfig: kc, log: () => undefined });

    // ---- static rotation to Secret ----------------------------------------------------------------------------
    await create('cofresecrets', 'CofreSecret', 'static', {
      connectionRef: { name: 'main' },
      source: { type: 'read', mount: 'database', path: 'static-creds/app' },
      target: { name: 'static-creds' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'static-web' }],
    });
    let current = (await watch.changed('static-creds', undefined)).password;
    const latencies: number[] = [];
    for (let i = 0; i < ROTATIONS; i++) {
      const t0 = Date.now();
      await writeOk(api, 'database/rotate-role/app');
      const s = await watch.changed('static-creds', current);
      latencies.push(s.at - t0);
      current = s.password;
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    log(
      `static rotation to Secret, ${ROTATIONS} rotations: p50 ${percentile(sorted, 50)} ms, p99 ${percentile(sorted, 99)} ms, max ${sorted.at(-1)} ms`,
    );

    // ---- dynamic re-issue to rollout --------------------------------------------------------------------------
    await create('cofresecrets', 'CofreSecret', 'dyn', {
      connectionRef: { name: 'main' },
      source: { type: 'dynamic', mount: 'database', path: 'creds/short', gracePeriod: '1h' },
      target: { name: 'dyn-creds' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'dyn-web' }],
    });
    const readStatus = async () =>
      (
        (await custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: NS,
          plural: 'cofresecrets',
          name: 'dyn',
        })) as { status?: { contentHash?: string; rollout?: { revision: string; finishedTime?: string } } }
      ).status;
    let held = await watch.changed('dyn-creds', undefined);
    let previous = await until('the first content hash in status', async () => (await readStatus())?.contentHash);
    const rows: { started: number; finished: number; dropped: number }[] = [];
    for (let i = 0; i < REISSUES; i++) {
      const next = await watch.changed('dyn-creds', held.password, 120_000);
      const revision = await until('the new content hash in status', async () => {
        const hash = (await readStatus())?.contentHash;
        return hash !== previous && hash;
      });
      previous = revision;
      const started = await until('the Deployment on the new revision', async () => {
        const d = await apps.readNamespacedDeployment({ name: 'dyn-web', namespace: NS });
        return d.spec?.template.metadata?.annotations?.[ROLLOUT_ANNOTATION] === revision && Date.now();
      });
      const finished = await until('the rollout finished', async () => {
        const s = await readStatus();
        return s?.rollout?.revision === revision && s.rollout.finishedTime !== undefined && Date.now();
      });
      const dropped = await until(
        'the old role dropped',
        async () => !(await flavor.userExists(db!, held.username)) && Date.now(),
      );
      rows.push({ started: started - next.at, finished: finished - next.at, dropped: dropped - next.at });
      log(
        `re-issue ${i + 1}: rollout started +${started - next.at} ms, finished +${finished - next.at} ms, ` +
          `old role dropped +${dropped - next.at} ms`,
      );
      held = next;
    }
    const med = (k: keyof (typeof rows)[number]) =>
      percentile(
        [...rows.map((r) => r[k])].sort((a, b) => a - b),
        50,
      );
    log(
      `dynamic re-issue (max TTL ${MAX_TTL}), median of ${REISSUES}: rollout started +${med('started')} ms, ` +
        `finished +${med('finished')} ms, old role dropped +${med('dropped')} ms`,
    );
  } finally {
    watch.stop();
    await operator?.stop();
    await srv?.stop();
    await Promise.all([cluster?.stop(), db?.stop()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

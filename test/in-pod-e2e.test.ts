// In-pod delivery end to end on a real node (issue 12): `cofre injector` registered as the webhook of a real
// kube-apiserver, pods that the real kubelet runs from Cofre's own image (the agent) and a busybox image (the app),
// a Cofre server on this machine's loopback and a real PostgreSQL. The pods use the host network: there is no
// kube-proxy, and the agent reaches Cofre at 127.0.0.1 (docs/testing.md, "Networking rules").
//
// What it proves: an environment variable reaches the application's process and no other process on the machine
// holds it; a file lands in the memory volume with its mode and is read-only for the application; a KV write is
// re-rendered into the running pod within 2 s; a dynamic PostgreSQL credential is renewed before its TTL and its
// role is dropped when the pod is deleted; a Job whose pod has the native sidecar completes; and no value is in
// etcd (the pod specs, Events, everything the API server stored), in the Events, or in the agent's logs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { COFRE_IMAGE, cofreImage, TEST_IMAGE } from '../scripts/build-image.js';
import type { TestDatabase } from '../scripts/test-databases.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { NODE_DIR, startNode, type TestNode } from '../scripts/test-node.js';
import { canLogIn, postgres } from './database-flavors.js';
import { loopbackWebhook, spawnInjector, type SpawnedInjector } from './injector-webhook.js';
import { enableKubernetesAuth, encodedForms, etcdDump, execInPod, holding } from './kube-support.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';

const NS = 'apps';
const SA = 'app';
const OPT_IN = { 'cofre.dev/inject': 'true' };
const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'in-pod-admin-pw-7d21';
const PG_TTL = 6;
const ENV_TTL = 4;
const ENV_MAX_TTL = 14;
/** Every value delivered: none may show up in etcd, an Event or an agent's log. */
const values = new Set<string>();
const value = (name: string) => {
  const v = `${name}-${createHash('sha256').update(`${name}${Date.now()}${Math.random()}`).digest('hex').slice(0, 20)}`;
  values.add(v);
  return v;
};
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const skip = process.env.COFRE_TEST_KUBECONFIG
  ? 'COFRE_TEST_KUBECONFIG names an existing cluster; the test node joins only one these tests start'
  : false;

describe('in-pod delivery on a real node: the injector, the agent from Cofre’s image, pods that run', { skip }, () => {
  let cluster: TestCluster;
  let node: TestNode | undefined;
  let srv: InProcessServer;
  let db: TestDatabase | undefined;
  let injector: SpawnedInjector | undefined;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  /** The agent containers' logs, read before their pods go. */
  const agentLogs: string[] = [];

  before(async () => {
    const started = startCluster({ name: 'in-pod' });
    const image = cofreImage();
    cluster = await started;
    node = await startNode(cluster, { images: [await image] });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);

    srv = await startServer();
    await enableKubernetesAuth(srv.api, cluster, kc);
    await writeOk(srv.api, 'sys/policies/acl/app', {
      policy:
        'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\npath "database/creds/*" {\n  capabilities = ["read"]\n}\n',
    });
    await writeOk(srv.api, 'auth/kubernetes/role/app', {
      bound_service_account_names: [SA],
      bound_service_account_namespaces: [NS],
      audience: 'cofre',
      token_policies: ['app'],
      token_ttl: '1h',
    });

    db = await postgres.start();
    for (const sql of postgres.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'database/config/main', {
      plugin_name: postgres.plugin,
      connection_url: postgres.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    await writeOk(srv.api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: postgres.creation,
      default_ttl: PG_TTL,
      max_ttl: 300,
    });
    await writeOk(srv.api, 'database/roles/app-env', {
      db_name: 'main',
      creation_statements: postgres.creation,
      default_ttl: ENV_TTL,
      max_ttl: ENV_MAX_TTL,
    });

    injector = await spawnInjector({
      dir: cluster.dir,
      args: [...['--agent-image', COFRE_IMAGE, '--agent-image-pull-policy', 'Never'], ...['--cofre-address', srv.url]],
    });
    await kc.makeApiClient(k8s.AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: loopbackWebhook('cofre-injector', injector.port, injector.caCert),
    });
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
    await poll('the default service account', () =>
      core.readNamespacedServiceAccount({ namespace: NS, name: 'default' }).then(() => true),
    );
  });

  after(async () => {
    injector?.child.kill('SIGKILL');
    await node?.stop();
    await cluster?.stop();
    await srv?.stop();
    await db?.stop();
  });

  const podSpec = (containers: k8s.V1Container[], extra: Partial<k8s.V1PodSpec> = {}): k8s.V1PodSpec => ({
    hostNetwork: true,
    serviceAccountName: SA,
    restartPolicy: 'Never',
    terminationGracePeriodSeconds: 10,
    containers,
    ...extra,
  });
  const app = (command: string): k8s.V1Container => ({
    name: 'app',
    image: TEST_IMAGE,
    imagePullPolicy: 'Never',
    command: ['sh', '-c', command],
  });
  /** An application that runs until it is told to stop, and stops at once (a shell as PID 1 ignores SIGTERM). */
  const LONG_RUNNING = 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done';

  const createPod = (name: string, annotations: Record<string, string>, spec: k8s.V1PodSpec) =>
    core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name, labels: OPT_IN, annotations: { 'cofre.dev/role': 'app', ...annotations } }, spec },
    });
  const running = (name: string) =>
    poll(
      `pod ${name} Running`,
      async () => {
        const p = await core.readNamespacedPod({ namespace: NS, name });
        if (p.status?.phase === 'Failed') throw new Error(`pod ${name} failed: ${JSON.stringify(p.status)}`);
        const ready = p.status?.containerStatuses?.every((c) => c.ready);
        return p.status?.phase === 'Running' && ready ? p : undefined;
      },
      120_000,
      250,
    );
  const logs = (pod: string, container: string) =>
    core.readNamespacedPodLog({ namespace: NS, name: pod, container }).catch((e: Error) => `(no log: ${e.message})`);
  const keepAgentLogs = async (pod: string, sidecar: boolean) => {
    agentLogs.push(await logs(pod, 'cofre-agent-init'));
    if (sidecar) agentLogs.push(await logs(pod, 'cofre-agent'));
  };
  const execIn = (pod: string, command: string[]) => execInPod(kc, NS, pod, 'app', command);
  /** A file of the pod's memory volume, read on the host (the test runs as root) without going through the pod. */
  const hostFile = (pod: k8s.V1Pod, file: string) =>
    path.join(NODE_DIR, 'kubelet/pods', pod.metadata!.uid!, 'volumes/kubernetes.io~empty-dir/cofre-secrets', file);

  it('delivers an environment variable to the application process only: no other process holds it', async (t) => {
    const apiKey = value('api-key');
    await writeOk(srv.api, 'secret/data/app/api', { data: { key: apiKey } });
    await createPod(
      'env-app',
      { 'cofre.dev/secret-api': 'secret/app/api', 'cofre.dev/env-api': 'API_KEY=key' },
      podSpec([app('printf %s "$API_KEY" | sha256sum; exec sleep 3600')], { terminationGracePeriodSeconds: 1 }),
    );
    const pod = await running('env-app');
    // The application prints a hash of what it got, never the value.
    const printed = await poll(
      'the application prints its hash',
      async () => (await logs('env-app', 'app')).trim() || undefined,
    );
    assert.equal(printed.split(/\s+/)[0], sha256(apiKey), 'the application sees API_KEY with the value in Cofre');

    // Every process on this machine: exactly one has the value in its environment, the application's `sleep`, in
    // this pod's cgroup. The agent became the application (execve), so no agent process holds it either.
    const holders = await poll(
      'exactly one process holding the value',
      async () => {
        const found = processesHolding(apiKey);
        return found.length === 1 ? found : undefined;
      },
      10_000,
    );
    assert.deepEqual(holders[0]!.cmdline, ['sleep', '3600']);
    assert.match(holders[0]!.cgroup, new RegExp(`pod${pod.metadata!.uid}`));
    t.diagnostic(`the value is in the environment of pid ${holders[0]!.pid} only (${holders[0]!.cmdline.join(' ')})`);
    await keepAgentLogs('env-app', false);
  });

  it('writes a file into the memory volume with its mode, read-only for the app, and re-renders a KV write within 2 s', async (t) => {
    let password = value('db-password');
    await writeOk(srv.api, 'secret/data/app/db', { data: { password, user: 'app' } });
    await createPod(
      'file-app',
      {
        'cofre.dev/sidecar': 'true',
        'cofre.dev/secret-db': 'secret/app/db',
        'cofre.dev/keys-db': 'password',
        'cofre.dev/format-db': 'raw',
        'cofre.dev/filemode-db': '0440',
      },
      podSpec([app(LONG_RUNNING)]),
    );
    const pod = await running('file-app');
    // What the application sees: a tmpfs mounted read-only, the file with mode 0440 and the value.
    const seen = await execIn('file-app', [
      'sh',
      '-c',
      'grep " /cofre/secrets " /proc/mounts; stat -c "%a" /cofre/secrets/db; sha256sum < /cofre/secrets/db; ' +
        'if touch /cofre/secrets/db /cofre/secrets/new 2>/dev/null; then echo writable; else echo read-only; fi',
    ]);
    const [mount, mode, hash, writable] = seen.trim().split('\n');
    assert.match(mount!, /^tmpfs \/cofre\/secrets tmpfs ro[,\s]/, 'a memory volume, mounted read-only');
    assert.equal(mode, '440');
    assert.equal(hash!.split(/\s+/)[0], sha256(password));
    assert.equal(writable, 'read-only');

    // Rotations: the sidecar follows the change stream and re-renders the file in the running pod.
    const file = hostFile(pod, 'db');
    assert.equal(readFileSync(file, 'utf8'), password);
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      password = value('db-password');
      const written = Date.now();
      await writeOk(srv.api, 'secret/data/app/db', { data: { password, user: 'app' } });
      await poll(`rotation ${i + 1} in the pod's file`, async () => readFileSync(file, 'utf8') === password, 5_000, 10);
      delays.push(Date.now() - written);
    }
    t.diagnostic(`KV write to re-rendered file: ${delays.join(', ')} ms`);
    assert.ok(Math.max(...delays) < 2_000, `every rotation within 2 s (${delays.join(', ')} ms)`);
    assert.equal((await execIn('file-app', ['sha256sum', '/cofre/secrets/db'])).split(/\s+/)[0], sha256(password));
    assert.equal(statSync(file).mode & 0o777, 0o440, 'the mode is kept across re-renders');
    await keepAgentLogs('file-app', true);
  });

  it('signals the application after a rotation (the sidecar finds it by name in the shared process namespace)', async (t) => {
    await writeOk(srv.api, 'secret/data/app/conf', { data: { token: value('conf') } });
    await createPod(
      'signal-app',
      {
        'cofre.dev/sidecar': 'true',
        'cofre.dev/secret-conf': 'secret/app/conf',
        'cofre.dev/keys-conf': 'token',
        'cofre.dev/format-conf': 'raw',
        'cofre.dev/on-change-signal': 'SIGHUP',
        'cofre.dev/on-change-process': 'sh',
      },
      // The application reloads on SIGHUP: it prints a hash of the file it now reads.
      podSpec([app(`trap 'echo "reloaded $(sha256sum < /cofre/secrets/conf)"' HUP; ${LONG_RUNNING}`)]),
    );
    const pod = await running('signal-app');
    assert.equal(pod.spec?.shareProcessNamespace, true);
    const rotated = value('conf');
    const written = Date.now();
    await writeOk(srv.api, 'secret/data/app/conf', { data: { token: rotated } });
    const line = await poll(
      'the application reloaded',
      async () => (await logs('signal-app', 'app')).split('\n').find((l) => l.startsWith('reloaded')),
      10_000,
      50,
    );
    t.diagnostic(`KV write to the application's reload: ${Date.now() - written} ms`);
    assert.equal(line.split(/\s+/)[1], sha256(rotated), 'the signal came after the new file was in place');
    await keepAgentLogs('signal-app', true);
  });

  it('renews a dynamic PostgreSQL credential before its TTL and drops its role when the pod is deleted', async (t) => {
    await createPod(
      'pg-app',
      {
        'cofre.dev/sidecar': 'true',
        'cofre.dev/creds-pg': 'database/creds/app',
        'cofre.dev/template-pg': 'user={{ .Data.username }} password={{ .Data.password }}',
      },
      podSpec([app(LONG_RUNNING)]),
    );
    const pod = await running('pg-app');
    const m = /^user=(\S+) password=(\S+)$/.exec(readFileSync(hostFile(pod, 'pg'), 'utf8').trim());
    assert.ok(m, 'the file holds the rendered template');
    const [, user, password] = m;
    values.add(password!);
    assert.ok(await canLogIn(postgres, db!, user!, password!), 'the credential logs in');

    const leases = await srv.api.call('LIST', 'sys/leases/lookup/database/creds/app/');
    assert.equal(leases.status, 200, leases.text);
    assert.equal(leases.body.data.keys.length, 1, 'one lease, the pod’s');
    const leaseId = `database/creds/app/${leases.body.data.keys[0]}`;
    const lookup = async () => (await writeOk(srv.api, 'sys/leases/lookup', { lease_id: leaseId })).body.data;
    const issued = Date.parse((await lookup()).issue_time);
    const renewed = await poll(
      'a renewal by the sidecar',
      async () => (await lookup()).last_renewal ?? undefined,
      PG_TTL * 1000,
    );
    assert.ok(Date.parse(renewed) - issued < PG_TTL * 1000, 'renewed before its TTL ran out');
    await poll('past the first TTL', async () => Date.now() - issued > PG_TTL * 1000 + 500, PG_TTL * 1000 + 2_000);
    assert.ok(await canLogIn(postgres, db!, user!, password!), 'still valid past its first TTL: renewed');
    t.diagnostic(`issued ${new Date(issued).toISOString()}, renewed ${renewed}`);

    await keepAgentLogs('pg-app', true);
    const deleted = Date.now();
    await core.deleteNamespacedPod({ namespace: NS, name: 'pg-app' });
    await poll('the role leaves pg_roles', async () => !(await postgres.userExists(db!, user!)), 30_000, 200);
    t.diagnostic(`role dropped ${Date.now() - deleted} ms after the pod's deletion`);
    const after = await srv.api.call('LIST', 'sys/leases/lookup/database/creds/app/');
    assert.equal(after.status, 404, 'no lease left');
  });

  it('renews a PostgreSQL credential in env vars, and restarts the container for a new one before its max TTL', async (t) => {
    await createPod(
      'env-pg',
      {
        'cofre.dev/sidecar': 'true',
        'cofre.dev/creds-pg': 'database/creds/app-env',
        'cofre.dev/env-pg': 'PGUSER=username,PGPASSWORD=password',
        'cofre.dev/on-change-signal': 'SIGTERM',
        'cofre.dev/on-change-process': 'sh',
      },
      podSpec([app(`echo "user=$PGUSER"; ${LONG_RUNNING}`)], { restartPolicy: 'Always' }),
    );
    await running('env-pg');
    const userIn = async () => /^user=(\S+)$/m.exec(await logs('env-pg', 'app'))?.[1];
    const first = await poll('the application prints its user', userIn);
    // The password is in the application's environment only: read there (as root) for the leak check below.
    const holder = await poll('the process with the credential', async () => processesHolding(`PGUSER=${first}`)[0]);
    values.add(/(?:^|\0)PGPASSWORD=([^\0]+)/.exec(readFileSync(`/proc/${holder.pid}/environ`, 'utf8'))![1]!);
    assert.ok(await postgres.userExists(db!, first));

    const list = async () => {
      const res = await srv.api.call('LIST', 'sys/leases/lookup/database/creds/app-env/');
      return res.status === 404 ? [] : (res.body.data.keys as string[]);
    };
    const [leaseKey] = await list();
    assert.ok(leaseKey, 'the exec run’s lease');
    const lookup = async () =>
      (await writeOk(srv.api, 'sys/leases/lookup', { lease_id: `database/creds/app-env/${leaseKey}` })).body.data;
    const issued = Date.parse((await lookup()).issue_time);
    const renewed = await poll(
      'a renewal by the sidecar',
      async () => (await lookup()).last_renewal ?? undefined,
      ENV_TTL * 1000,
    );
    t.diagnostic(`env credential renewed ${Date.parse(renewed) - issued} ms after it was issued (TTL ${ENV_TTL} s)`);

    // Before the max TTL, the sidecar has the container restarted (SIGTERM), and its new exec run a new credential.
    let restartedAt = 0;
    const restarted = await poll(
      'the container restarted with a new credential',
      async () => {
        const p = await core.readNamespacedPod({ namespace: NS, name: 'env-pg' });
        const status = p.status?.containerStatuses?.[0];
        if ((status?.restartCount ?? 0) < 1) return undefined;
        restartedAt = Date.parse(String(status?.lastState?.terminated?.finishedAt));
        const user = await userIn();
        return user && user !== first ? user : undefined;
      },
      ENV_MAX_TTL * 1000 + 10_000,
      250,
    );
    t.diagnostic(
      `the first process ended ${restartedAt - issued} ms after its credential was issued (max TTL ${ENV_MAX_TTL} s)`,
    );
    // finishedAt has whole seconds.
    assert.ok(restartedAt - issued < ENV_MAX_TTL * 1000, 'the process was restarted before its credential ran out');
    await poll('the first role is dropped', async () => !(await postgres.userExists(db!, first)), 10_000, 200);
    const second = await poll('the new process', async () => processesHolding(`PGUSER=${restarted}`)[0]);
    values.add(/(?:^|\0)PGPASSWORD=([^\0]+)/.exec(readFileSync(`/proc/${second.pid}/environ`, 'utf8'))![1]!);

    // The application container sees its own directory of the exec-state volume and nothing of the agents' state.
    assert.equal(
      (
        await execIn('env-pg', ['sh', '-c', 'ls -A /cofre/exec-state; test -e /cofre/state && echo agents-state; true'])
      ).trim(),
      'leases.json',
    );
    // It plants a link, then a token that is not its login, where its exec run left its leases: the sidecar refuses
    // both, says why, and keeps renewing (and later revokes) the run it holds.
    const sidecarLog = () => logs('env-pg', 'cofre-agent');
    const refused = (reason: string) => async () =>
      (await sidecarLog()).split('\n').find((l) => l.includes('refused an exec state file') && l.includes(reason));
    await execIn('env-pg', ['ln', '-sf', '/var/run/secrets/cofre/token', '/cofre/exec-state/leases.json']);
    await poll('the sidecar refuses a link', refused('symbolic link'), 10_000, 250);
    const planted = '{"token":"hvs.planted-by-the-app","ttl":3600,"renewable":true,"leases":{}}';
    await execIn('env-pg', [
      'sh',
      '-c',
      `rm -f /cofre/exec-state/leases.json; echo '${planted}' > /cofre/exec-state/leases.json`,
    ]);
    await poll('the sidecar refuses a foreign token', refused('not valid'), 10_000, 250);
    assert.ok(!(await sidecarLog()).includes('hvs.planted-by-the-app'), 'the planted token is not logged');
    assert.ok(await postgres.userExists(db!, restarted), 'the run the sidecar holds is untouched');

    await keepAgentLogs('env-pg', true);
    await core.deleteNamespacedPod({ namespace: NS, name: 'env-pg' });
    await poll(
      'the new role is dropped with the pod',
      async () => !(await postgres.userExists(db!, restarted)),
      30_000,
      200,
    );
  });

  it('lets a Job whose pod has the native sidecar complete', async () => {
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    await batch.createNamespacedJob({
      namespace: NS,
      body: {
        metadata: { name: 'job' },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: {
              labels: OPT_IN,
              annotations: {
                'cofre.dev/role': 'app',
                'cofre.dev/sidecar': 'true',
                'cofre.dev/secret-db': 'secret/app/db',
                'cofre.dev/keys-db': 'password',
                'cofre.dev/format-db': 'raw',
              },
            },
            spec: podSpec([app('test -s /cofre/secrets/db && echo the file is there')]),
          },
        },
      },
    });
    const job = await poll(
      'the Job completes',
      async () => {
        const j = await batch.readNamespacedJob({ namespace: NS, name: 'job' });
        if ((j.status?.failed ?? 0) > 0) throw new Error(`the Job failed: ${JSON.stringify(j.status)}`);
        return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
      },
      120_000,
      500,
    );
    assert.equal(job.status?.succeeded, 1);
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=job' });
    const jobPod = pods.items[0]!;
    assert.ok(
      jobPod.spec?.initContainers?.some((c) => c.name === 'cofre-agent' && c.restartPolicy === 'Always'),
      'the pod ran the agent as a native sidecar',
    );
    assert.equal(await logs(jobPod.metadata!.name!, 'app'), 'the file is there\n');
    await keepAgentLogs(jobPod.metadata!.name!, true);
  });

  it('leaves no value in etcd (pod specs and all), the Events, or the agent’s logs', async () => {
    assert.ok(values.size >= 12, 'the tests above delivered their values');
    const forms = [...values].flatMap(encodedForms);
    const dump = await etcdDump(cluster.etcdUrl!);
    assert.ok(
      dump.some((e) => e.key.includes('/pods/apps/file-app')),
      'the dump holds the pods',
    );
    assert.deepEqual(holding(dump, forms), [], 'no key of etcd holds a value');

    const events = await core.listNamespacedEvent({ namespace: NS });
    assert.ok(events.items.length > 0);
    const eventText = JSON.stringify(events.items);
    for (const v of values) assert.ok(!eventText.includes(v), 'no Event holds a value');

    assert.ok(agentLogs.length >= 10 && agentLogs.every((l) => l.length > 0), 'the agents logged');
    for (const log of agentLogs) for (const v of values) assert.ok(!log.includes(v), 'no agent log holds a value');
    // The kubelet's own copies of every container's log, on the host.
    for (const file of filesUnder(path.join(NODE_DIR, 'pod-logs'))) {
      const text = readFileSync(file, 'utf8');
      for (const v of values) assert.ok(!text.includes(v), `${file} holds no value`);
    }
  });
});

/** The processes on this machine whose environment holds `needle`, with their command line and cgroup. */
function processesHolding(needle: string): { pid: number; cmdline: string[]; cgroup: string }[] {
  const out: { pid: number; cmdline: string[]; cgroup: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`).includes(needle)) continue;
      out.push({
        pid: Number(entry),
        cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean),
        cgroup: readFileSync(`/proc/${entry}/cgroup`, 'utf8'),
      });
    } catch {
      // The process ended while it was read.
    }
  }
  return out;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

// The operator beyond KV, end to end: a real kube-apiserver + etcd + kube-controller-manager (scripts/test-cluster.ts;
// the controller manager makes ReplicaSets and pods, which stay Pending: there is no node), a real PostgreSQL
// (scripts/test-databases.ts), a real Cofre server in this process, and the operator started in-process.
// - dynamic credentials (database/creds/<role>): the lease is held, renewed, replaced before its max TTL, the old
//   role dropped only once the rollout finished, and every role dropped when the CofreSecret goes;
// - static roles (database/static-creds/<role>): rotate-role and the schedule reach the Secret through the change
//   stream within 2 s;
// - coordinated restarts: a burst of writes is one rollout, an operator restart with unchanged content is none, a
//   namespace's rollouts are rate-limited, a rollout that does not finish is reported;
// - rotation completeness: status and metrics count the pods on the current and on older revisions.
// Every wait polls against a deadline; nothing sleeps for a fixed time except to show that nothing happens.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { installCrds } from '../scripts/cofre-crds.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { startOperator, type Operator } from '../src/kube/operator/index.js';
import { outdatedPods, reconcileTotal } from '../src/kube/operator/metrics.js';
import { LEASE_FINALIZER, ROLLOUT_ANNOTATION } from '../src/kube/operator/types.js';
import { postgres as flavor } from './database-flavors.js';
import { enableKubernetesAuth } from './kube-support.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';

const GROUP = 'cofre.dev';
const VERSION = 'v1alpha1';
const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'admin-pw-5c1e7a-do-not-leak';
const NAMESPACES = ['dyn', 'stat', 'burst', 'limited'];
/** Rollouts batched over 2 s (the default); a namespace may start 2 at once, then one every 5 s. */
const ROLLOUTS = { batchWindowMs: 2_000, namespaceRolloutsPerMinute: 12, namespaceRolloutBurst: 2 };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function gauge(g: typeof outdatedPods, labels: Record<string, string>): Promise<number | undefined> {
  const { values } = await g.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    ?.value;
}

describe('cofre operator: dynamic and static database credentials, coordinated restarts, completeness', () => {
  let cluster: TestCluster;
  let db: TestDatabase;
  let srv: InProcessServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let custom: k8s.CustomObjectsApi;
  let operator: Operator | undefined;
  /** Every credential value seen: none may show in status, Events or the operator's log. */
  const values = new Set<string>([ADMIN_PASSWORD]);
  const logs: string[] = [];
  const start = async () => {
    operator = await startOperator({
      kubeConfig: kc,
      rollouts: ROLLOUTS,
      log: (msg, f) => {
        logs.push(JSON.stringify({ msg, ...f }));
        if (process.env.COFRE_TEST_OPERATOR_LOG) process.stderr.write(`${new Date().toISOString()} ${logs.at(-1)}\n`);
      },
    });
  };

  const getSecret = (namespace: string, name: string) =>
    core.readNamespacedSecret({ name, namespace }).catch((e) => {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    });
  const decoded = (s: k8s.V1Secret | undefined): Record<string, string> =>
    Object.fromEntries(Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  const getCs = async (namespace: string, name: string) =>
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'cofresecrets',
      name,
    })) as Json;
  const createCs = (namespace: string, name: string, spec: Json) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'cofresecrets',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CofreSecret', metadata: { name }, spec },
    });
  const deleteCs = (namespace: string, name: string) =>
    custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'cofresecrets', name });
  const csGone = async (namespace: string, name: string) =>
    getCs(namespace, name).then(
      () => false,
      (e) => (e as { code?: number }).code === 404,
    );
  const createDeployment = (namespace: string, name: string, strategy?: k8s.V1DeploymentStrategy) =>
    apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name },
        spec: {
          replicas: 1,
          strategy,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: 'nginx' }] } },
        },
      },
    });
  const replicaSets = async (namespace: string, app: string) =>
    (await apps.listNamespacedReplicaSet({ namespace, labelSelector: `app=${app}` })).items;
  const templateRevision = async (namespace: string, name: string) =>
    (await apps.readNamespacedDeployment({ name, namespace })).spec?.template.metadata?.annotations?.[
      ROLLOUT_ANNOTATION
    ];
  const canLogIn = (username: string, password: string, sql = flavor.allowedSelect) =>
    flavor.runAs(db, username, password, sql).then(
      () => true,
      () => false,
    );
  const lookup = async (leaseId: string) => {
    const res = await srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } });
    return res.status === 200 ? (res.body.data as Json) : undefined;
  };
  /** The credential in a Secret, once it holds one (recorded, so later checks can look for leaks). */
  const credentialIn = async (namespace: string, name: string, not?: string) => {
    const c = await poll(`a credential in ${namespace}/${name}${not ? ` other than ${not}` : ''}`, async () => {
      const d = decoded(await getSecret(namespace, name));
      return d.username && d.username !== not ? d : undefined;
    });
    values.add(c.password!);
    return c as { username: string; password: string };
  };

  before(async () => {
    [cluster, db] = await Promise.all([
      startCluster({ name: 'operator-dynamic', controllerManager: true }),
      startPostgres(),
    ]);
    for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await installCrds(kc);

    srv = await startServer();
    await enableKubernetesAuth(srv.api, cluster, kc);
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'database/config/main', {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    // Renewed every 2/3 of 4 s (a shorter TTL leaves a loaded machine too little margin), for an hour at most.
    await writeOk(srv.api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '4s',
      max_ttl: '1h',
    });
    // Replaced two thirds into its 24 s: at about 16 s, leaving 8 s before it would expire on its own.
    await writeOk(srv.api, 'database/roles/short', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '6s',
      max_ttl: '24s',
    });
    // Replaced at about 8 s; with a 2 s grace period its old role goes at about 10 s, 2 s before it would expire.
    await writeOk(srv.api, 'database/roles/brief', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '4s',
      max_ttl: '12s',
    });
    for (const sql of flavor.createUser('static_app', 'static-original-pw-3f0a')) await db.query(sql);
    await writeOk(srv.api, 'database/static-roles/app', {
      db_name: 'main',
      username: 'static_app',
      rotation_period: '1h',
    });
    // What the namespaces' role may do: read the credentials and KV, and hold leases (Vault's VSO asks the same).
    await writeOk(srv.api, 'sys/policies/acl/operator-apps', {
      policy: [
        'path "database/creds/*" { capabilities = ["read"] }',
        'path "database/static-creds/*" { capabilities = ["read"] }',
        'path "secret/data/*" { capabilities = ["read"] }',
        'path "sys/leases/lookup" { capabilities = ["update"] }',
        'path "sys/leases/renew/database/creds/*" { capabilities = ["update"] }',
        'path "sys/leases/revoke/database/creds/*" { capabilities = ["update"] }',
      ].join('\n'),
    });
    await writeOk(srv.api, 'auth/kubernetes/role/apps', {
      bound_service_account_names: ['reader'],
      bound_service_account_namespaces: NAMESPACES,
      audience: 'cofre',
      token_policies: ['operator-apps'],
      token_ttl: '1h',
    });
    for (const ns of NAMESPACES) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: 'cofreconnections',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'CofreConnection',
          metadata: { name: 'main' },
          spec: { address: srv.url, auth: { kubernetes: { role: 'apps', serviceAccountName: 'reader' } } },
        },
      });
    }
    await start();
  });

  after(async () => {
    await operator?.stop();
    await srv?.stop();
    await Promise.all([cluster?.stop(), db?.stop()]);
  });

  let dynUser = '';

  it('a dynamic role: the Secret logs in to PostgreSQL and the operator renews the lease', async (t) => {
    await createCs('dyn', 'db', {
      connectionRef: { name: 'main' },
      source: { type: 'dynamic', mount: 'database', path: 'creds/app' },
      target: { name: 'db-creds' },
    });
    const cred = await credentialIn('dyn', 'db-creds');
    dynUser = cred.username;
    assert.ok(await canLogIn(cred.username, cred.password), 'the credential logs in');
    const cs = await poll('status with the lease', async () => {
      const o = await getCs('dyn', 'db');
      return o.status?.lease?.id && o;
    });
    assert.ok(cs.metadata.finalizers.includes(LEASE_FINALIZER), 'the finalizer that revokes on delete');
    assert.match(cs.status.lease.id, /^database\/creds\/app\//);
    const first = await lookup(cs.status.lease.id);
    assert.ok(first, 'the lease exists on the server');
    // Renewed at about 2/3 of its 4 s TTL: the server's expiry moves on, and last_renewal is set.
    const renewed = await poll(
      'a renewal seen through sys/leases/lookup',
      async () => {
        const now = await lookup(cs.status.lease.id);
        return Boolean(now?.last_renewal) && Date.parse(now.expire_time) > Date.parse(first.expire_time) && now;
      },
      15_000,
    );
    t.diagnostic(`renewed: expiry ${first.expire_time} -> ${renewed.expire_time}`);
    // Still the same credential, still logging in, well past its first TTL.
    await poll('a second renewal', async () => {
      const now = await lookup(cs.status.lease.id);
      return now && Date.parse(now.expire_time) > Date.parse(renewed.expire_time);
    });
    assert.equal(decoded(await getSecret('dyn', 'db-creds')).username, cred.username);
    assert.ok(await canLogIn(cred.username, cred.password), 'still logs in after its first TTL');

    // An operator restart continues from status: the same lease, renewed, and no new credential.
    await operator!.stop();
    await start();
    const seen = await lookup(cs.status.lease.id);
    await poll('a renewal by the restarted operator', async () => {
      const now = await lookup(cs.status.lease.id);
      return now && Date.parse(now.expire_time) > Date.parse(seen.expire_time);
    });
    assert.equal(decoded(await getSecret('dyn', 'db-creds')).username, cred.username, 'not re-issued');
    assert.equal((await getCs('dyn', 'db')).status.lease.id, cs.status.lease.id);

    // Revoked behind the operator's back: its next renewal is refused, and a new credential is issued at once.
    await writeOk(srv.api, `sys/leases/revoke/${cs.status.lease.id}`);
    const fresh = await credentialIn('dyn', 'db-creds', cred.username);
    dynUser = fresh.username;
    assert.ok(await canLogIn(fresh.username, fresh.password), 'the replacement logs in');
    assert.equal(await flavor.userExists(db, cred.username), false);
    const after = await poll('the new lease in status', async () => {
      const o = await getCs('dyn', 'db');
      return o.status.lease.id !== cs.status.lease.id && o;
    });
    assert.ok(await lookup(after.status.lease.id));
  });

  it('a short max TTL: replaced before expiry, the Deployment rolls once, the old role goes after the new pods are up', async (t) => {
    // Recreate: the old pod goes before the new one is made, so the rollout can finish without a node.
    await createDeployment('dyn', 'short-web', { type: 'Recreate' });
    await poll('the first ReplicaSet', async () => (await replicaSets('dyn', 'short-web')).length === 1);
    await createCs('dyn', 'short', {
      connectionRef: { name: 'main' },
      source: { type: 'dynamic', mount: 'database', path: 'creds/short', gracePeriod: '1h' },
      target: { name: 'short-creds' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'short-web' }],
    });
    const old = await credentialIn('dyn', 'short-creds');
    const oldLease = (await poll('the lease in status', async () => (await getCs('dyn', 'short')).status?.lease))
      .id as string;
    const oldExpiry = Date.parse((await lookup(oldLease)).max_expire_time ?? '');
    assert.ok(oldExpiry > Date.now(), 'lookup shows the max expiry');
    // Created with the Deployment in place: the first sync does not restart it.
    assert.equal(await templateRevision('dyn', 'short-web'), undefined);

    const fresh = await credentialIn('dyn', 'short-creds', old.username);
    const replacedAt = Date.now();
    t.diagnostic(`replaced ${oldExpiry - replacedAt} ms before the old lease's max expiry`);
    assert.ok(replacedAt < oldExpiry, 'replaced before the old credential expired');
    assert.ok(await canLogIn(fresh.username, fresh.password), 'the new credential logs in');
    assert.ok(await flavor.userExists(db, old.username), 'the old role stays while the rollout runs');

    // The old role goes once the rollout finished, and before its lease would have expired on its own.
    await poll('the old role dropped', async () => !(await flavor.userExists(db, old.username)), 20_000, 50);
    const droppedAt = Date.now();
    assert.ok(droppedAt < oldExpiry, `dropped by the operator ${oldExpiry - droppedAt} ms before the expiry`);
    // The reconcile that saw the rollout finish revokes the old lease, then writes its status: read it once written.
    const cs = await poll('the finished rollout in status', async () => {
      const o = await getCs('dyn', 'short');
      return o.status.rollout?.finishedTime ? o : undefined;
    });
    assert.ok(Date.parse(cs.status.rollout.finishedTime) <= droppedAt, 'the rollout finished first');
    assert.equal(cs.status.rollout.revision, cs.status.contentHash);
    assert.deepEqual(cs.status.rollout.targets, [
      { kind: 'Deployment', name: 'short-web', currentPods: 1, outdatedPods: 0 },
    ]);
    const sets = await replicaSets('dyn', 'short-web');
    const current = sets.find(
      (rs) => rs.spec?.template?.metadata?.annotations?.[ROLLOUT_ANNOTATION] === cs.status.contentHash,
    );
    assert.ok(current && (current.status?.replicas ?? 0) >= 1, 'the new ReplicaSet is up');
    assert.deepEqual(cs.status.retiredLeases, []);
    assert.equal(await lookup(oldLease), undefined, 'the old lease is gone');
    // Rolled once: one new ReplicaSet, and no other after a while.
    await sleep(3_000);
    assert.equal((await replicaSets('dyn', 'short-web')).length, 2);
    assert.equal(await gauge(outdatedPods, { namespace: 'dyn', cofresecret: 'short' }), 0);
  });

  it('a rollout that never finishes: the old credential goes when its grace period ends, not before', async (t) => {
    // RollingUpdate keeps the old pod until the new one is ready, which never happens without a node.
    await createDeployment('dyn', 'stuck-web');
    await createCs('dyn', 'brief', {
      connectionRef: { name: 'main' },
      source: { type: 'dynamic', mount: 'database', path: 'creds/brief', gracePeriod: '2s' },
      target: { name: 'brief-creds' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'stuck-web' }],
    });
    const old = await credentialIn('dyn', 'brief-creds');
    const oldLease = (await poll('the lease in status', async () => (await getCs('dyn', 'brief')).status?.lease))
      .id as string;
    const oldExpiry = Date.parse((await lookup(oldLease)).max_expire_time);
    await credentialIn('dyn', 'brief-creds', old.username);
    const replacedAt = Date.now();
    const retired = await poll('the old lease retired', async () => {
      const o = await getCs('dyn', 'brief');
      return o.status.retiredLeases?.find((r: Json) => r.id === oldLease);
    });
    assert.ok(Date.parse(retired.revokeAt) >= replacedAt + 1_000, 'kept for its grace period');
    await poll('the old role dropped', async () => !(await flavor.userExists(db, old.username)), 15_000, 50);
    const droppedAt = Date.now();
    t.diagnostic(
      `dropped ${droppedAt - replacedAt} ms after the replacement, ${oldExpiry - droppedAt} ms before expiry`,
    );
    assert.ok(droppedAt >= Date.parse(retired.revokeAt) - 100, 'not before the grace period ended');
    assert.ok(droppedAt < oldExpiry, 'by the operator, before the lease would have expired');
    // The rollout of the replacement started, and cannot finish: the grace period alone let the old role go. The
    // new pod is counted once the ReplicaSet controller made it (on a busy machine, after the first recording).
    const stuck = [{ kind: 'Deployment', name: 'stuck-web', currentPods: 1, outdatedPods: 1 }];
    const cs = await poll('the rollout of the replacement recorded, with its new pod and its old one', async () => {
      const o = await getCs('dyn', 'brief');
      const targets: Json[] | undefined = o.status.rollout?.targets;
      const counted = targets?.length === 1 && targets[0].currentPods === 1 && targets[0].outdatedPods === 1;
      return o.status.rollout?.revision === o.status.contentHash && counted && o;
    });
    assert.equal(cs.status.rollout.finishedTime, undefined, 'the rollout has not finished');
    assert.deepEqual(cs.status.rollout.targets, stuck);
    await deleteCs('dyn', 'brief');
    await poll('brief gone', () => csGone('dyn', 'brief'));
  });

  it('a lease ID planted in status that is not of its own source is never revoked', async () => {
    // A lease of database/creds/app, issued by the root token: nothing of the "short" CofreSecret.
    const other = await srv.api.call('GET', 'database/creds/app');
    assert.equal(other.status, 200, other.text);
    values.add(other.body.data.password);
    const planted = other.body.lease_id as string;
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: 'dyn',
        plural: 'cofresecrets',
        name: 'short',
        body: {
          status: {
            retiredLeases: [
              {
                id: planted,
                replacedBy: 'x',
                revokeAt: new Date(0).toISOString(),
                ttlSeconds: 4,
                expireTime: new Date(0).toISOString(),
                maxExpireTime: new Date(0).toISOString(),
              },
            ],
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await deleteCs('dyn', 'short');
    await poll('the short CofreSecret gone', () => csGone('dyn', 'short'));
    assert.ok(await lookup(planted), 'the planted lease is still there');
    assert.ok(await flavor.userExists(db, other.body.data.username));
    await writeOk(srv.api, `sys/leases/revoke/${planted}`);
  });

  it('deleting a dynamic CofreSecret revokes its lease: the role is gone from pg_roles', async () => {
    assert.ok(dynUser && (await flavor.userExists(db, dynUser)));
    const leaseId = (await getCs('dyn', 'db')).status.lease.id as string;
    await deleteCs('dyn', 'db');
    await poll('the CofreSecret gone', () => csGone('dyn', 'db'));
    assert.equal(await flavor.userExists(db, dynUser), false, 'revoked before the finalizer let it go');
    assert.equal(await lookup(leaseId), undefined);
  });

  it('a static role: rotate-role reaches the Secret within 2 s and rolls the Deployment once', async (t) => {
    await createDeployment('stat', 'static-web');
    await createCs('stat', 'static', {
      connectionRef: { name: 'main' },
      source: { type: 'read', mount: 'database', path: 'static-creds/app' },
      target: { name: 'static-creds' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'static-web' }],
    });
    const first = await credentialIn('stat', 'static-creds');
    assert.equal(first.username, 'static_app');
    // A static role's user has no grants of its own: logging in is what counts.
    assert.ok(await canLogIn('static_app', first.password, 'SELECT 1'));
    // The countdown is not content (it would rewrite the Secret on every read).
    assert.equal(decoded(await getSecret('stat', 'static-creds')).ttl, undefined);
    await poll('the first rollout state recorded', async () => (await getCs('stat', 'static')).status?.rollout);
    const t0 = Date.now();
    await writeOk(srv.api, 'database/rotate-role/app');
    const rotated = await poll(
      'the rotated password in the Secret',
      async () => {
        const d = decoded(await getSecret('stat', 'static-creds'));
        return d.password !== first.password && d;
      },
      5_000,
      10,
    );
    const latency = Date.now() - t0;
    values.add(rotated.password!);
    t.diagnostic(`rotate-role to Secret: ${latency} ms`);
    assert.ok(latency < 2_000, `rotation reached the Secret in ${latency} ms`);
    assert.ok(await canLogIn('static_app', rotated.password!, 'SELECT 1'));
    await poll('one new ReplicaSet', async () => (await replicaSets('stat', 'static-web')).length === 2, 20_000);
    await sleep(3_000);
    assert.equal((await replicaSets('stat', 'static-web')).length, 2, 'rolled once');
  });

  it("a static role's scheduled rotation reaches the Secret within 2 s", async (t) => {
    for (const sql of flavor.createUser('static_sched', 'static-original-pw-77c1')) await db.query(sql);
    await writeOk(srv.api, 'database/static-roles/sched', {
      db_name: 'main',
      username: 'static_sched',
      rotation_period: 5,
    });
    await createCs('stat', 'sched', {
      connectionRef: { name: 'main' },
      source: { type: 'read', mount: 'database', path: 'static-creds/sched' },
      target: { name: 'sched-creds' },
    });
    const first = await credentialIn('stat', 'sched-creds');
    // Watch the server and the Secret side by side: when the server's password changes, the Secret follows.
    let serverChangedAt = 0;
    let server = first.password;
    const secret = await poll(
      'the scheduled rotation in the Secret',
      async () => {
        const now = (await srv.api.call('GET', 'database/static-creds/sched')).body.data.password as string;
        if (now !== server && serverChangedAt === 0) serverChangedAt = Date.now();
        server = now;
        const d = decoded(await getSecret('stat', 'sched-creds'));
        return d.password !== first.password && d;
      },
      15_000,
      20,
    );
    values.add(secret.password!);
    await writeOk(srv.api, 'database/static-roles/sched', { rotation_period: '1h' }); // quiet for the rest
    const latency = Date.now() - (serverChangedAt || Date.now());
    t.diagnostic(`scheduled rotation to Secret: about ${latency} ms`);
    assert.ok(latency < 2_000, `the scheduled rotation reached the Secret in ${latency} ms`);
  });

  it('ten writes in one second produce one rollout; restarting the operator with unchanged content produces none', async (t) => {
    await createDeployment('burst', 'burst-web');
    await writeOk(srv.api, 'secret/data/burst/app', { data: { value: 'v0' } });
    await createCs('burst', 'app', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'burst/app' },
      target: { name: 'app' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'burst-web' }],
    });
    const initial = await poll(
      'the first sync recorded',
      async () => (await getCs('burst', 'app')).status?.rollout?.revision as string | undefined,
    );
    assert.equal((await replicaSets('burst', 'burst-web')).length, 1, 'no restart on creation');
    const t0 = Date.now();
    for (let i = 1; i <= 10; i++) {
      await writeOk(srv.api, 'secret/data/burst/app', { data: { value: `v${i}` } });
      await sleep(Math.max(0, t0 + i * 100 - Date.now()));
    }
    t.diagnostic(`ten writes in ${Date.now() - t0} ms`);
    await poll('the last value', async () => decoded(await getSecret('burst', 'app')).value === 'v10');
    const cs = await poll('the rollout of the last value', async () => {
      const o = await getCs('burst', 'app');
      const { rollout, contentHash } = o.status;
      return rollout?.revision !== initial && rollout?.revision === contentHash && rollout.startedTime && o;
    });
    t.diagnostic(`rollout started ${Date.parse(cs.status.rollout.startedTime) - t0} ms after the first write`);
    assert.equal(await templateRevision('burst', 'burst-web'), cs.status.contentHash);
    await sleep(3_000);
    assert.equal((await replicaSets('burst', 'burst-web')).length, 2, 'one rollout for ten writes');

    // Restarted with nothing new: every object reconciled, nothing written, nothing rolled. The baseline is taken
    // once the pod counts in status have settled (the controller manager is still making the new pod).
    await poll('the status to settle', async () => {
      const before = (await getCs('burst', 'app')).metadata.resourceVersion;
      await sleep(2_500);
      return (await getCs('burst', 'app')).metadata.resourceVersion === before;
    });
    const rv = (await getCs('burst', 'app')).metadata.resourceVersion;
    const depRv = (await apps.readNamespacedDeployment({ name: 'burst-web', namespace: 'burst' })).metadata!
      .resourceVersion;
    await operator!.stop();
    const unchanged0 = (await reconcileTotal.get()).values.find((v) => v.labels.result === 'unchanged')?.value ?? 0;
    await start();
    await poll('unchanged reconciles after the restart', async () => {
      const v = (await reconcileTotal.get()).values.find((x) => x.labels.result === 'unchanged')?.value ?? 0;
      return v - unchanged0 >= 2;
    });
    await sleep(ROLLOUTS.batchWindowMs + 1_000);
    assert.equal(
      (await apps.readNamespacedDeployment({ name: 'burst-web', namespace: 'burst' })).metadata!.resourceVersion,
      depRv,
      'the Deployment was not touched',
    );
    assert.equal((await replicaSets('burst', 'burst-web')).length, 2, 'no rollout after the restart');
    assert.equal((await getCs('burst', 'app')).metadata.resourceVersion, rv, 'no status write either');
  });

  it('status shows pods on old and current revisions during a rollout, a stuck rollout is reported, and zero after', async () => {
    // RollingUpdate (the default) keeps the old pod until the new one is ready, which never happens without a node.
    await createDeployment('burst', 'slow-web');
    await writeOk(srv.api, 'secret/data/burst/slow', { data: { value: 's0' } });
    await createCs('burst', 'slow', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'burst/slow' },
      target: { name: 'slow' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'slow-web' }],
      rolloutTimeout: '3s',
    });
    await poll('the first sync recorded', async () => (await getCs('burst', 'slow')).status?.rollout?.revision);
    await writeOk(srv.api, 'secret/data/burst/slow', { data: { value: 's1' } });
    const during = await poll('one pod on each revision', async () => {
      const o = await getCs('burst', 'slow');
      const [target] = o.status.rollout?.targets ?? [];
      return (
        o.status.rollout?.revision === o.status.contentHash &&
        target?.outdatedPods === 1 &&
        target.currentPods === 1 &&
        o
      );
    });
    assert.equal(during.status.rollout.finishedTime, undefined);
    assert.equal(await gauge(outdatedPods, { namespace: 'burst', cofresecret: 'slow' }), 1);
    const stuck = await poll('RolloutComplete=False, RolloutStuck', async () => {
      const o = await getCs('burst', 'slow');
      const c = o.status.conditions.find((x: Json) => x.type === 'RolloutComplete');
      return c?.reason === 'RolloutStuck' && c;
    });
    assert.equal(stuck.status, 'False');
    assert.match(stuck.message, /Deployment\/slow-web: 1 pods on an older revision, 1 current/);
    const events = await poll('a RolloutStuck Warning', async () => {
      const list = await core.listNamespacedEvent({ namespace: 'burst' });
      return list.items.filter((e) => e.involvedObject.name === 'slow' && e.reason === 'RolloutStuck');
    });
    assert.equal(events[0]!.type, 'Warning');
    // The workload's owner switches it to Recreate: the controller removes the old pod and the rollout finishes.
    await apps.patchNamespacedDeployment(
      { name: 'slow-web', namespace: 'burst', body: { spec: { strategy: { type: 'Recreate', rollingUpdate: null } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const done = await poll(
      'no pod left on the older revision',
      async () => {
        const o = await getCs('burst', 'slow');
        return o.status.rollout?.finishedTime && o;
      },
      40_000,
    );
    assert.deepEqual(done.status.rollout.targets, [
      { kind: 'Deployment', name: 'slow-web', currentPods: 1, outdatedPods: 0 },
    ]);
    assert.equal(done.status.conditions.find((x: Json) => x.type === 'RolloutComplete').status, 'True');
    assert.equal(await gauge(outdatedPods, { namespace: 'burst', cofresecret: 'slow' }), 0);
  });

  it('rollouts are rate-limited per namespace: a burst of two, then one every 5 s', async (t) => {
    const names = ['one', 'two', 'three'];
    for (const n of names) {
      await createDeployment('limited', `${n}-web`);
      await writeOk(srv.api, `secret/data/limited/${n}`, { data: { value: '0' } });
      await createCs('limited', n, {
        connectionRef: { name: 'main' },
        source: { mount: 'secret', path: `limited/${n}` },
        target: { name: n },
        rolloutRestartTargets: [{ kind: 'Deployment', name: `${n}-web` }],
      });
    }
    const initial: Record<string, string> = {};
    for (const n of names) {
      initial[n] = await poll(`${n} synced`, async () => (await getCs('limited', n)).status?.rollout?.revision);
    }
    for (const n of names) await writeOk(srv.api, `secret/data/limited/${n}`, { data: { value: '1' } });
    const started = await Promise.all(
      names.map((n) =>
        poll(`${n} rolled`, async () => {
          const { rollout, contentHash } = (await getCs('limited', n)).status;
          return (
            rollout?.revision !== initial[n] && rollout?.revision === contentHash && Date.parse(rollout.startedTime)
          );
        }),
      ),
    );
    const sorted = [...started].sort((a, b) => a - b);
    t.diagnostic(`rollouts started at +0, +${sorted[1]! - sorted[0]!}, +${sorted[2]! - sorted[0]!} ms`);
    assert.ok(sorted[1]! - sorted[0]! < 2_000, 'the first two together');
    assert.ok(sorted[2]! - sorted[0]! >= 4_000, 'the third waits for the namespace to earn a rollout');
  });

  it('no credential value shows in status, Events or the log', async () => {
    const statuses = JSON.stringify(
      await Promise.all(
        NAMESPACES.map((namespace) =>
          custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'cofresecrets' }),
        ),
      ),
    );
    const events = JSON.stringify(await core.listEventForAllNamespaces());
    for (const v of values) {
      assert.ok(!statuses.includes(v), 'a value in a CofreSecret');
      assert.ok(!events.includes(v), 'a value in an Event');
      assert.ok(!logs.some((l) => l.includes(v)), 'a value in the log');
    }
  });
});

// The operator end to end: a real kube-apiserver + etcd + kube-controller-manager (scripts/test-cluster.ts), a real
// Cofre server in this process, and the operator started in-process with startOperator on the admin kubeconfig.
// Every wait polls against a deadline; nothing sleeps for a fixed time.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { installCrds } from '../scripts/cofre-crds.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { startOperator, type Operator } from '../src/kube/operator/index.js';
import { reconcileTotal, targetWrites } from '../src/kube/operator/metrics.js';
import { ROLLOUT_ANNOTATION } from '../src/kube/operator/types.js';
import { enableKubernetesAuth } from './kube-support.js';
import { apiClient, startServer, type InProcessServer } from './support.js';
import { poll as pollEvery } from './poll.js';

const GROUP = 'cofre.dev';
const VERSION = 'v1alpha1';
const APPS = 'apps';
const DENIED = 'denied';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** Polls often: some tests here time how soon a change lands. */
const poll = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000, every = 20): Promise<T> =>
  pollEvery(what, fn, ms, every);

async function counterValue(c: { get(): Promise<{ values: { value: number; labels: object }[] }> }, label?: object) {
  const { values } = await c.get();
  return values
    .filter((v) => !label || Object.entries(label).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

describe('cofre operator on a real control plane', () => {
  let cluster: TestCluster;
  let srv: InProcessServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let custom: k8s.CustomObjectsApi;
  let operator: Operator | undefined;
  const logs: string[] = [];
  const start = async () => {
    operator = await startOperator({ kubeConfig: kc, log: (msg, f) => logs.push(JSON.stringify({ msg, ...f })) });
  };
  const ok = (res: { status: number; text: string }) => assert.ok(res.status < 300, res.text);
  const kvWrite = async (p: string, data: Record<string, string>) =>
    ok(await srv.api.call('POST', `secret/data/${p}`, { body: { data } }));

  const getSecret = (name: string, namespace = APPS) =>
    core.readNamespacedSecret({ name, namespace }).catch((e) => {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    });
  const getCs = async (name: string, namespace = APPS) =>
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'cofresecrets',
      name,
    })) as Json;
  const createCs = (name: string, spec: Json, namespace = APPS) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'cofresecrets',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CofreSecret', metadata: { name }, spec },
    });
  const deleteCs = (name: string, namespace = APPS) =>
    custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'cofresecrets', name });
  const decoded = (s: k8s.V1Secret | undefined) =>
    Object.fromEntries(Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  const replicaSets = async () =>
    (await apps.listNamespacedReplicaSet({ namespace: APPS, labelSelector: 'app=web' })).items;

  before(async () => {
    cluster = await startCluster({ name: 'operator', controllerManager: true });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);

    await installCrds(kc);

    for (const ns of [APPS, DENIED]) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
    }
    srv = await startServer();
    await enableKubernetesAuth(srv.api, cluster, kc);
    const policy = (name: string, p: string) =>
      srv.api.call('PUT', `sys/policies/acl/${name}`, {
        body: { policy: `path "${p}" {\n  capabilities = ["read"]\n}\n` },
      });
    ok(await policy('apps-read', 'secret/data/apps/*'));
    ok(await policy('denied-read', 'secret/data/elsewhere/*'));
    for (const ns of [APPS, DENIED]) {
      ok(
        await srv.api.call('POST', `auth/kubernetes/role/${ns}`, {
          body: {
            bound_service_account_names: ['reader'],
            bound_service_account_namespaces: [ns],
            audience: 'cofre',
            token_policies: [`${ns}-read`],
            token_ttl: '1h',
          },
        }),
      );
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: 'cofreconnections',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'CofreConnection',
          metadata: { name: 'main' },
          spec: { address: srv.url, auth: { kubernetes: { role: ns, serviceAccountName: 'reader' } } },
        },
      });
    }
    await kvWrite('apps/db', { username: 'app', password: 'VALUE-db-1' });
    await kvWrite('apps/config', { mode: 'VALUE-cfg-1' });

    await apps.createNamespacedDeployment({
      namespace: APPS,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
        },
      },
    });
    await poll('the Deployment first ReplicaSet', async () => (await replicaSets()).length === 1, 30_000, 100);
    await start();
  });

  // A server restarted on its old directory does not own it: remove it once the server is stopped.
  let restartedDir: string | undefined;
  after(async () => {
    await operator?.stop();
    await srv?.stop();
    await cluster?.stop();
    if (restartedDir) rmSync(restartedDir, { recursive: true, force: true });
  });

  it('syncs a KV v2 secret into a Secret with an owner reference, Ready=True and a content hash', async () => {
    await createCs('db', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'apps/db' },
      target: { name: 'db-creds', labels: { team: 'a' } },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'web' }],
    });
    const secret = await poll('Secret db-creds', () => getSecret('db-creds'));
    assert.deepEqual(decoded(secret), { username: 'app', password: 'VALUE-db-1' });
    assert.equal(secret.type, 'Opaque');
    assert.equal(secret.metadata?.labels?.team, 'a');
    const cs = await poll('Ready=True', async () => {
      const o = await getCs('db');
      return o.status?.conditions?.find((c: Json) => c.type === 'Ready')?.status === 'True' && o;
    });
    assert.deepEqual(
      secret.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
      [['CofreSecret', 'db', cs.metadata.uid, true]],
    );
    assert.match(cs.status.contentHash, /^hmac-sha256:[0-9a-f]{64}$/);
    assert.equal(cs.status.sourceVersion, 1);
    assert.equal(cs.status.observedGeneration, cs.metadata.generation);
    assert.ok(cs.status.lastSyncTime);
    const managers = secret.metadata?.managedFields?.map((m) => m.manager) ?? [];
    assert.ok(managers.includes('cofre'), `field managers: ${managers.join(', ')}`);
    const events = await poll('a Synced Event', async () => {
      const list = await core.listNamespacedEvent({ namespace: APPS });
      return list.items.some((e) => e.involvedObject.name === 'db' && e.reason === 'Synced') && list;
    });
    for (const where of [JSON.stringify(cs.status), JSON.stringify(events.items), logs.join('\n')]) {
      assert.equal(where.includes('VALUE-'), false, 'no secret value in status, Events or logs');
    }
  });

  it('renders an imagePullSecret (kubernetes.io/dockerconfigjson) with the dockerconfigjson template helper', async () => {
    await kvWrite('apps/registry', { registry: 'registry.example:5000', username: 'bot', password: 'VALUE-pull-1' });
    await createCs('regcred', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'apps/registry' },
      target: {
        name: 'regcred',
        type: 'kubernetes.io/dockerconfigjson',
        templates: { '.dockerconfigjson': '{{ dockerconfigjson . }}' },
      },
    });
    // The API server validates a dockerconfigjson Secret's content: it accepted this one.
    const secret = await poll('Secret regcred', () => getSecret('regcred'));
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    assert.deepEqual(JSON.parse(decoded(secret)['.dockerconfigjson']!), {
      auths: {
        'registry.example:5000': {
          username: 'bot',
          password: 'VALUE-pull-1',
          auth: Buffer.from('bot:VALUE-pull-1').toString('base64'),
        },
      },
    });
    await deleteCs('regcred');
  });

  it('pushes a KV write to the Secret within 2 s (no interval) and rolls the Deployment', async (t) => {
    const before = await getCs('db');
    const t0 = Date.now();
    await kvWrite('apps/db', { username: 'app', password: 'VALUE-db-2' });
    await poll(
      'the new value in the Secret',
      async () => decoded(await getSecret('db-creds')).password === 'VALUE-db-2',
      5_000,
      10,
    );
    const latency = Date.now() - t0;
    t.diagnostic(`KV write to Secret updated: ${latency} ms`);
    assert.ok(latency < 2_000, `push latency ${latency} ms`);
    const after = await poll('the new content hash in status', async () => {
      const o = await getCs('db');
      return o.status.contentHash !== before.status.contentHash && o.status.sourceVersion === 2 && o;
    });
    const rs = await poll('a second ReplicaSet', async () => (await replicaSets()).length === 2, 30_000, 100);
    assert.ok(rs);
    t.diagnostic(`Deployment rolled to a new ReplicaSet after ${Date.now() - t0} ms`);
    const dep = await apps.readNamespacedDeployment({ name: 'web', namespace: APPS });
    assert.equal(dep.spec?.template.metadata?.annotations?.[ROLLOUT_ANNOTATION], after.status.contentHash);
  });

  it('a ConfigMap target works the same way', async (t) => {
    await createCs('cfg', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'apps/config' },
      target: { kind: 'ConfigMap', name: 'app-config', annotations: { note: 'from cofre' } },
    });
    const cm = await poll('ConfigMap app-config', () =>
      core.readNamespacedConfigMap({ name: 'app-config', namespace: APPS }).catch(() => undefined),
    );
    assert.deepEqual(cm.data, { mode: 'VALUE-cfg-1' });
    assert.equal(cm.metadata?.annotations?.note, 'from cofre');
    await poll('Ready=True', async () => (await getCs('cfg')).status?.conditions?.[0]?.status === 'True');
    const t0 = Date.now();
    await kvWrite('apps/config', { mode: 'VALUE-cfg-2' });
    await poll(
      'the ConfigMap update',
      async () =>
        (await core.readNamespacedConfigMap({ name: 'app-config', namespace: APPS })).data?.mode === 'VALUE-cfg-2',
      5_000,
      10,
    );
    const latency = Date.now() - t0;
    t.diagnostic(`KV write to ConfigMap updated: ${latency} ms`);
    assert.ok(latency < 2_000, `push latency ${latency} ms`);
  });

  it('renders per-key templates', async () => {
    await createCs('tpl', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'apps/db' },
      target: {
        name: 'db-url',
        templates: {
          url: 'postgres://{{ .username }}:{{ .password }}@db/app',
          user: '{{ index . "username" | b64enc }}',
        },
      },
    });
    const s = await poll('Secret db-url', () => getSecret('db-url'));
    assert.deepEqual(decoded(s), {
      url: 'postgres://app:VALUE-db-2@db/app',
      user: Buffer.from('app').toString('base64'),
    });
  });

  it('deleting a CofreSecret removes its Secret under Delete and keeps it under Retain', async () => {
    for (const [name, policy] of [
      ['gone', 'Delete'],
      ['kept', 'Retain'],
    ] as const) {
      await createCs(name, {
        connectionRef: { name: 'main' },
        source: { mount: 'secret', path: 'apps/db' },
        target: { name: `${name}-secret` },
        deletionPolicy: policy,
      });
    }
    await poll('both targets', async () => (await getSecret('gone-secret')) && (await getSecret('kept-secret')));
    assert.equal(
      (await getSecret('kept-secret'))?.metadata?.ownerReferences,
      undefined,
      'no owner reference under Retain',
    );
    // Switching a Delete CofreSecret to Retain drops the owner reference (server-side apply removes the field).
    await createCs('switch', {
      connectionRef: { name: 'main' },
      source: { mount: 'secret', path: 'apps/db' },
      target: { name: 'switch-secret' },
    });
    await poll(
      'an owned target',
      async () => (await getSecret('switch-secret'))?.metadata?.ownerReferences?.length === 1,
    );
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: APPS,
        plural: 'cofresecrets',
        name: 'switch',
        body: { spec: { deletionPolicy: 'Retain' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await poll('the owner reference removed', async () => {
      const s = await getSecret('switch-secret');
      return s !== undefined && (s.metadata?.ownerReferences ?? []).length === 0;
    });
    await deleteCs('gone');
    await deleteCs('kept');
    await deleteCs('switch');
    // The garbage collector works in the background: wait for it to remove the Delete target; by then it has long
    // seen the Retain one, which has no owner to follow.
    await poll(
      'the Delete target garbage-collected',
      async () => (await getSecret('gone-secret')) === undefined,
      60_000,
      100,
    );
    const kept = await getSecret('kept-secret');
    assert.deepEqual(decoded(kept), { username: 'app', password: 'VALUE-db-2' });
    assert.ok(await getSecret('switch-secret'), 'a target switched to Retain survives its CofreSecret');
  });

  it('a namespace whose role may not read the path gets Ready=False (AccessDenied) and no Secret', async () => {
    await createCs(
      'db',
      { connectionRef: { name: 'main' }, source: { mount: 'secret', path: 'apps/db' }, target: { name: 'db-creds' } },
      DENIED,
    );
    const ready = await poll('Ready=False', async () => {
      const c = (await getCs('db', DENIED)).status?.conditions?.find((x: Json) => x.type === 'Ready');
      return c?.status === 'False' && c;
    });
    assert.equal(ready.reason, 'AccessDenied');
    assert.match(ready.message, /role "denied" .* may not read secret\/apps\/db/);
    assert.equal(await getSecret('db-creds', DENIED), undefined);
    await poll('a Warning Event', async () =>
      (await core.listNamespacedEvent({ namespace: DENIED })).items.some(
        (e) => e.type === 'Warning' && e.reason === 'AccessDenied',
      ),
    );
  });

  it('restarted, converges to the latest value with one write, and a restart without news writes nothing', async () => {
    await operator!.stop();
    operator = undefined;
    await kvWrite('apps/db', { username: 'app', password: 'VALUE-db-3' });
    await kvWrite('apps/db', { username: 'app', password: 'VALUE-db-4' });
    const writes0 = await counterValue(targetWrites);
    await start();
    await poll('the latest value', async () => decoded(await getSecret('db-creds')).password === 'VALUE-db-4');
    await poll('status at version 4', async () => (await getCs('db')).status.sourceVersion === 4);
    // db-creds and db-url (both read apps/db) change; the ConfigMap does not.
    assert.equal(
      (await counterValue(targetWrites)) - writes0,
      2,
      'one write per changed target, none for stale versions',
    );

    // Rollouts are batched: the one for version 4 is carried out and recorded before the baseline is taken, and
    // the pod counts in status have settled (the controller manager is still making and removing pods; the
    // operator counts them every 2 s while the rollout runs).
    await poll('the rollout of version 4 recorded', async () => {
      const { status } = await getCs('db');
      return status.rollout?.revision === status.contentHash;
    });
    await poll(
      'the status to settle',
      async () => {
        const before = (await getCs('db')).metadata.resourceVersion;
        await new Promise((r) => setTimeout(r, 2_500));
        return (await getCs('db')).metadata.resourceVersion === before;
      },
      30_000,
    );
    const rv = (await getSecret('db-creds'))!.metadata!.resourceVersion;
    const cm = (await core.readNamespacedConfigMap({ name: 'app-config', namespace: APPS })).metadata!.resourceVersion;
    const csRv = (await getCs('db')).metadata.resourceVersion;
    const rsCount = (await replicaSets()).length;
    await operator!.stop();
    const unchanged0 = await counterValue(reconcileTotal, { result: 'unchanged' });
    const writes1 = await counterValue(targetWrites);
    await start();
    // Every CofreSecret in the apps namespace (db, cfg, tpl) is reconciled once without anything to do.
    await poll(
      'three unchanged reconciles',
      async () => (await counterValue(reconcileTotal, { result: 'unchanged' })) - unchanged0 >= 3,
    );
    assert.equal(await counterValue(targetWrites), writes1);
    assert.equal((await getSecret('db-creds'))!.metadata!.resourceVersion, rv);
    assert.equal(
      (await core.readNamespacedConfigMap({ name: 'app-config', namespace: APPS })).metadata!.resourceVersion,
      cm,
    );
    assert.equal((await getCs('db')).metadata.resourceVersion, csRv, 'no status write either');
    assert.equal((await replicaSets()).length, rsCount, 'no second rollout for the same content');
  });
  it('after the Cofre server restarts, the operator resumes its change stream and misses nothing', async (t) => {
    const { dir, keys, rootToken } = srv;
    const port = Number(new URL(srv.url).port);
    await srv.cofre.close();
    srv = await startServer({ dir, initialised: false, port });
    for (const key of keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
    srv = { ...srv, keys, rootToken, api: apiClient(srv.url, rootToken) };
    // Written as soon as the server is back, before the operator has reconnected: it must come from the resume.
    const t0 = Date.now();
    await kvWrite('apps/db', { username: 'app', password: 'VALUE-db-after-restart' });
    await poll(
      'the value written right after the restart',
      async () => decoded(await getSecret('db-creds')).password === 'VALUE-db-after-restart',
      15_000,
      20,
    );
    t.diagnostic(`synced ${Date.now() - t0} ms after the restart`);
    restartedDir = dir;
  });
});

// The cluster agent's Kubernetes side on real control planes (scripts/test-cluster.ts): its keys, applying delivery
// revisions (server-side apply, ownership, immutable Secrets, pruning, rollouts), removal, and the lifecycle map.
// Three clusters: A has a controller manager (Deployments get ReplicaSets and Pods; without a kubelet the pods stay
// Pending but carry their template's annotations), B and C only an API server; they show that what is applied to
// one cluster lands there and nowhere else. Every wait polls against a deadline; nothing sleeps for a fixed time.
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { runProcess } from './support.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { kubeTools } from '../scripts/kube-tools.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { sealBundle } from '../src/clusters/sealing.js';
import { DeliveryApplier, DeliveryError } from '../src/kube/cluster-agent/apply.js';
import { AgentLoop } from '../src/kube/cluster-agent/agent.js';
import type { FetchedBundle } from '../src/kube/cluster-agent/protocol.js';
import { KEYS_SECRET, loadOrCreateAgentKeys, type AgentKeys } from '../src/kube/cluster-agent/keys.js';
import { LifecycleReader } from '../src/kube/cluster-agent/lifecycle.js';
import type { DeliveryPayload, PayloadObject } from '../src/kube/cluster-agent/payload.js';
import { poll } from './poll.js';

const AGENT_NS = 'cofre-agent';
const chart = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'charts', 'cofre');
const APPS = 'apps';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

const run = runProcess;

interface Kube {
  cluster: TestCluster;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  applier: DeliveryApplier;
}

async function connect(cluster: TestCluster, logs: string[]): Promise<Kube> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const name of [AGENT_NS, APPS]) await core.createNamespace({ body: { metadata: { name } } });
  const applier = new DeliveryApplier(kc, (msg, fields) => logs.push(JSON.stringify({ msg, ...fields })));
  return { cluster, kc, core, apps: kc.makeApiClient(k8s.AppsV1Api), applier };
}

const secretObj = (name: string, data: Record<string, string>, extra: Partial<PayloadObject> = {}): PayloadObject => ({
  kind: 'Secret',
  name,
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  ...extra,
});
const configObj = (name: string, data: Record<string, string>): PayloadObject => ({
  ...secretObj(name, data),
  kind: 'ConfigMap',
});

describe('cluster agent: keys, apply, remove and the lifecycle map on real kube-apiservers', () => {
  let a: Kube;
  let b: Kube;
  let c: Kube;
  const logs: string[] = [];
  const notFound = (e: unknown) => {
    if ((e as { code?: number }).code === 404) return undefined;
    throw e;
  };
  const secret = (k: Kube, name: string, namespace = APPS) =>
    k.core.readNamespacedSecret({ name, namespace }).catch(notFound);
  const configMap = (k: Kube, name: string, namespace = APPS) =>
    k.core.readNamespacedConfigMap({ name, namespace }).catch(notFound);
  const decoded = (s: k8s.V1Secret | undefined) =>
    Object.fromEntries(Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  const replicaSets = async () =>
    (await a.apps.listNamespacedReplicaSet({ namespace: APPS, labelSelector: 'app=web' })).items;
  /** Everything any test could leak, to check that no value ever appears in it. */
  const leakSurfaces = () => logs.join('\n');

  before(async () => {
    const [ca, cb, cc] = await Promise.all([
      startCluster({ name: 'agent-a', controllerManager: true }),
      startCluster({ name: 'agent-b', controllerManager: false }),
      startCluster({ name: 'agent-c', controllerManager: false }),
    ]);
    [a, b, c] = await Promise.all([connect(ca, logs), connect(cb, logs), connect(cc, logs)]);
  });
  after(async () => {
    await Promise.all([a?.cluster.stop(), b?.cluster.stop(), c?.cluster.stop()]);
  });

  it('generates the keys once and loads the same keys on later starts; private halves never shown', async () => {
    const first = await loadOrCreateAgentKeys(a.kc, AGENT_NS);
    assert.equal(first.created, true);
    const again = await loadOrCreateAgentKeys(a.kc, AGENT_NS);
    assert.equal(again.created, false);
    assert.equal(again.keys.sealingPublicKey, first.keys.sealingPublicKey);
    assert.equal(again.keys.signingPublicKey, first.keys.signingPublicKey);
    for (const k of [first.keys.sealingPublicKey, first.keys.signingPublicKey])
      assert.equal(Buffer.from(k, 'base64url').length, 32, 'raw 32-byte public keys, base64url');

    const stored = (await secret(a, KEYS_SECRET, AGENT_NS))!;
    assert.equal(stored.immutable, true);
    assert.deepEqual(Object.keys(stored.data ?? {}).sort(), ['sealing-private-key', 'signing-private-key']);
    const privateHalves = Object.values(stored.data!).flatMap((v) => [
      v,
      Buffer.from(v, 'base64').toString('base64url'),
    ]);
    for (const shown of [JSON.stringify(first.keys), inspect(first.keys), inspect(first), String(first.keys)])
      for (const p of privateHalves) assert.equal(shown.includes(p), false, 'a private key is shown');

    // The loaded keys work: the sealing key opens what is sealed to its public half, the signature verifies with
    // the enrolled raw public key, as the server will check a login.
    const binding = { clusterId: 'c-a', delivery: 'shop', namespace: APPS, revision: 1 };
    const sealed = await sealBundle(first.keys.sealingPublicKey, binding, Buffer.from('{"objects":[]}'));
    assert.equal(Buffer.from(await again.keys.open(binding, sealed)).toString(), '{"objects":[]}');
    const message = 'cofre-agent-login\nc-a\n2026-12-02T00:00:00Z\nbm9uY2U';
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: first.keys.signingPublicKey },
      format: 'jwk',
    });
    assert.equal(
      verify(null, Buffer.from(message), publicKey, Buffer.from(again.keys.sign(message), 'base64url')),
      true,
    );
    assert.match(first.keys.fingerprints().sealing, /^[0-9a-f]{64}$/);
  });

  it('two replicas racing on a first start end with one key set', async () => {
    const racers = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateAgentKeys(b.kc, AGENT_NS)));
    assert.equal(racers.filter((r) => r.created).length, 1, 'exactly one creator');
    assert.equal(new Set(racers.map((r) => r.keys.sealingPublicKey)).size, 1);
    assert.equal(new Set(racers.map((r) => r.keys.signingPublicKey)).size, 1);
    const later = await loadOrCreateAgentKeys(b.kc, AGENT_NS);
    assert.equal(later.keys.signingPublicKey, racers[0]!.keys.signingPublicKey);
    const inA = await loadOrCreateAgentKeys(a.kc, AGENT_NS);
    assert.notEqual(inA.keys.sealingPublicKey, later.keys.sealingPublicKey, 'each cluster has its own keys');
  });

  it('applies a revision with server-side apply and the labels, in the cluster it is applied to only', async () => {
    const payload: DeliveryPayload = {
      objects: [
        secretObj('db', { username: 'app', password: 'VALUE-db-1' }),
        configObj('settings', { mode: 'fast', 'feature.json': '{"x":1}' }),
      ],
      rollout: [{ kind: 'Deployment', name: 'web' }], // not created yet: skipped
    };
    const res = await a.applier.apply('shop', APPS, 1, payload);
    assert.deepEqual(res, { written: ['Secret/db', 'ConfigMap/settings'], deleted: [], rolled: [] });
    const s = (await secret(a, 'db'))!;
    assert.deepEqual(decoded(s), { username: 'app', password: 'VALUE-db-1' });
    assert.equal(s.type, 'Opaque');
    assert.deepEqual(s.metadata?.labels, { 'app.kubernetes.io/managed-by': 'cofre', 'cofre.dev/delivery': 'shop' });
    assert.equal(s.metadata?.annotations?.['cofre.dev/revision'], '1');
    assert.deepEqual(
      s.metadata?.managedFields?.map((m) => [m.manager, m.operation]),
      [['cofre', 'Apply']],
    );
    const cm = (await configMap(a, 'settings'))!;
    assert.deepEqual(cm.data, { mode: 'fast', 'feature.json': '{"x":1}' });
    assert.equal(cm.metadata?.labels?.['cofre.dev/delivery'], 'shop');

    // Cluster C gets its own revision with its own values; B gets nothing.
    await c.applier.apply('shop', APPS, 1, {
      objects: [secretObj('db', { username: 'app', password: 'VALUE-db-c' })],
      rollout: [],
    });
    assert.equal(decoded(await secret(c, 'db')).password, 'VALUE-db-c');
    assert.equal(decoded(await secret(a, 'db')).password, 'VALUE-db-1');
    for (const k of [b, c]) assert.equal(await configMap(k, 'settings'), undefined);
    assert.equal(await secret(b, 'db'), undefined);
    const inB = await b.core.listNamespacedSecret({ namespace: APPS, labelSelector: 'cofre.dev/delivery' });
    assert.equal(inB.items.length, 0);
  });

  it('a new revision updates the objects and rolls the Deployment; the lifecycle map shows old and new', async () => {
    // maxSurge 100 % and maxUnavailable 0: without a kubelet no pod becomes available, so a rollout adds a
    // ReplicaSet of new pods next to the old ones and cannot scale the old ones down: both revisions stay visible.
    // The Deployment starts at 0 replicas and is scaled up once its delivery is in place (just in time).
    await a.apps.createNamespacedDeployment({
      namespace: APPS,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'web' } },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '100%', maxUnavailable: 0 } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
        },
      },
    });
    await poll('the first ReplicaSet', async () => (await replicaSets()).length === 1);
    const lifecycle = new LifecycleReader(a.kc);
    const rollout = [{ kind: 'Deployment' as const, name: 'web' }];
    assert.deepEqual(await lifecycle.read(APPS, rollout), {}, 'no pods yet');

    // Re-applying revision 1 now that the Deployment exists rolls it onto revision 1 (the objects are unchanged).
    const one = await a.applier.apply('shop', APPS, 1, {
      objects: [
        secretObj('db', { username: 'app', password: 'VALUE-db-1' }),
        configObj('settings', { mode: 'fast', 'feature.json': '{"x":1}' }),
      ],
      rollout,
    });
    assert.deepEqual(one, { written: [], deleted: [], rolled: ['Deployment/web'] });
    await poll('the revision 1 ReplicaSet', async () => (await replicaSets()).length === 2);
    await a.apps.patchNamespacedDeployment(
      { name: 'web', namespace: APPS, body: { spec: { replicas: 2 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await poll('two pods on revision 1', async () => (await lifecycle.read(APPS, rollout))['1'] === 2);

    const two = await a.applier.apply('shop', APPS, 2, {
      objects: [
        secretObj('db', { username: 'app', password: 'VALUE-db-2' }),
        configObj('settings', { mode: 'fast', 'feature.json': '{"x":1}' }),
      ],
      rollout,
    });
    assert.deepEqual(two, { written: ['Secret/db', 'ConfigMap/settings'], deleted: [], rolled: ['Deployment/web'] });
    assert.equal(decoded(await secret(a, 'db')).password, 'VALUE-db-2');
    assert.equal((await configMap(a, 'settings'))?.metadata?.annotations?.['cofre.dev/revision'], '2');
    const dep = await a.apps.readNamespacedDeployment({ name: 'web', namespace: APPS });
    assert.equal(dep.spec?.template.metadata?.annotations?.['cofre.dev/revision'], '2');
    let seen: object = {};
    const map = await poll(
      () => `pods on revision 2 next to pods on revision 1; last map ${JSON.stringify(seen)}`,
      async () => {
        const m = await lifecycle.read(APPS, rollout);
        seen = m;
        return m['2'] === 2 && (m['1'] ?? 0) > 0 && m;
      },
    );
    assert.deepEqual(Object.keys(map).sort(), ['1', '2']);
    const rs = await replicaSets();
    const revisions = rs.map((r) => r.spec?.template?.metadata?.annotations?.['cofre.dev/revision']).sort();
    assert.deepEqual(revisions, ['1', '2', undefined].sort(), 'a new ReplicaSet per rollout');

    // The same revision again: nothing written, nothing rolled.
    const secretRv = (await secret(a, 'db'))?.metadata?.resourceVersion;
    const again = await a.applier.apply('shop', APPS, 2, {
      objects: [
        secretObj('db', { username: 'app', password: 'VALUE-db-2' }),
        configObj('settings', { mode: 'fast', 'feature.json': '{"x":1}' }),
      ],
      rollout,
    });
    assert.deepEqual(again, { written: [], deleted: [], rolled: [] });
    assert.equal((await secret(a, 'db'))?.metadata?.resourceVersion, secretRv);
    const depAfter = await a.apps.readNamespacedDeployment({ name: 'web', namespace: APPS });
    assert.equal(depAfter.metadata?.generation, dep.metadata?.generation, 'no new rollout');
    assert.equal((await replicaSets()).length, 3);
  });

  it('refuses to overwrite an object cofre does not manage, writes nothing, and names it without values', async () => {
    await a.core.createNamespacedSecret({
      namespace: APPS,
      body: { metadata: { name: 'hand-made' }, stringData: { token: 'VALUE-hand-made' } },
    });
    // The operator's targets carry managed-by=cofre but no delivery label: not this delivery's either.
    await a.core.createNamespacedConfigMap({
      namespace: APPS,
      body: {
        metadata: { name: 'operator-made', labels: { 'app.kubernetes.io/managed-by': 'cofre' } },
        data: { k: 'operator' },
      },
    });
    const before = (await secret(a, 'hand-made'))!;
    const dbBefore = (await secret(a, 'db'))!;
    const err = await a.applier
      .apply('shop', APPS, 3, {
        objects: [
          secretObj('db', { username: 'app', password: 'VALUE-db-3' }),
          secretObj('hand-made', { token: 'VALUE-db-3-theirs' }),
          configObj('operator-made', { k: 'VALUE-cm-3' }),
        ],
        rollout: [{ kind: 'Deployment', name: 'web' }],
      })
      .then(
        () => assert.fail('applied over objects cofre does not manage'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof DeliveryError);
    assert.match(err.message, /Secret apps\/hand-made/);
    assert.match(err.message, /ConfigMap apps\/operator-made/);
    assert.equal(/VALUE|VkFMVUU/.test(err.message), false, `a value in: ${err.message}`);
    assert.equal((await secret(a, 'hand-made'))?.metadata?.resourceVersion, before.metadata?.resourceVersion);
    assert.equal((await configMap(a, 'operator-made'))?.data?.k, 'operator');
    assert.equal(
      (await secret(a, 'db'))?.metadata?.resourceVersion,
      dbBefore.metadata?.resourceVersion,
      'all or nothing',
    );
    const dep = await a.apps.readNamespacedDeployment({ name: 'web', namespace: APPS });
    assert.equal(dep.spec?.template.metadata?.annotations?.['cofre.dev/revision'], '2', 'no rollout');

    // Another delivery's object is not this one's to take either.
    await a.applier.apply('billing', APPS, 1, {
      objects: [secretObj('billing-db', { pw: 'VALUE-billing' })],
      rollout: [],
    });
    await assert.rejects(
      a.applier.apply('shop', APPS, 3, { objects: [secretObj('billing-db', { pw: 'VALUE-x' })], rollout: [] }),
      (e: Error) => e instanceof DeliveryError && /Secret apps\/billing-db/.test(e.message) && !/VALUE/.test(e.message),
    );
    assert.equal(decoded(await secret(a, 'billing-db')).pw, 'VALUE-billing');
  });

  it('replaces an immutable Secret whose content changed, and keeps it when only the revision moves', async () => {
    const objs = (pw: string): DeliveryPayload => ({
      objects: [secretObj('tls', { 'tls.key': pw }, { immutable: true, type: 'app/tls' })],
      rollout: [],
    });
    await c.applier.apply('certs', APPS, 1, objs('VALUE-key-1'));
    const first = (await secret(c, 'tls'))!;
    assert.equal(first.immutable, true);
    assert.equal(first.type, 'app/tls');
    assert.deepEqual(await c.applier.apply('certs', APPS, 2, objs('VALUE-key-2')), {
      written: ['Secret/tls'],
      deleted: [],
      rolled: [],
    });
    const second = (await secret(c, 'tls'))!;
    assert.notEqual(second.metadata?.uid, first.metadata?.uid, 'replaced: delete + create');
    assert.equal(decoded(second)['tls.key'], 'VALUE-key-2');
    assert.equal(second.immutable, true);
    await c.applier.apply('certs', APPS, 3, objs('VALUE-key-2'));
    const third = (await secret(c, 'tls'))!;
    assert.equal(third.metadata?.uid, second.metadata?.uid, 'same content: updated in place');
    assert.equal(third.metadata?.annotations?.['cofre.dev/revision'], '3');
    // Made mutable again: an immutable Secret cannot be, so it is replaced.
    await c.applier.apply('certs', APPS, 4, {
      objects: [secretObj('tls', { 'tls.key': 'VALUE-key-2' }, { type: 'app/tls' })],
      rollout: [],
    });
    const fourth = (await secret(c, 'tls'))!;
    assert.notEqual(fourth.metadata?.uid, third.metadata?.uid);
    assert.equal(fourth.immutable ?? false, false);
  });

  it('deletes the objects a revision no longer holds, and only those', async () => {
    const res = await a.applier.apply('shop', APPS, 3, {
      objects: [secretObj('db', { username: 'app', password: 'VALUE-db-3' })],
      rollout: [],
    });
    assert.deepEqual(res, { written: ['Secret/db'], deleted: ['ConfigMap/settings'], rolled: [] });
    assert.equal(await configMap(a, 'settings'), undefined);
    assert.equal(decoded(await secret(a, 'db')).password, 'VALUE-db-3');
    assert.ok(await configMap(a, 'operator-made'));
    assert.ok(await secret(a, 'billing-db'));
  });

  it('remove deletes every object of the delivery and nothing else, in that cluster only', async () => {
    await a.applier.apply('shop', APPS, 4, {
      objects: [secretObj('db', { password: 'VALUE-db-4' }), configObj('settings', { mode: 'slow' })],
      rollout: [],
    });
    // The same names in another namespace, unlabelled: not the delivery's.
    await a.core.createNamespacedSecret({
      namespace: AGENT_NS,
      body: { metadata: { name: 'db' }, stringData: { x: 'y' } },
    });
    const deleted = await a.applier.remove('shop', APPS);
    assert.deepEqual(deleted.sort(), ['ConfigMap/settings', 'Secret/db']);
    assert.equal(await secret(a, 'db'), undefined);
    assert.equal(await configMap(a, 'settings'), undefined);
    assert.ok(await secret(a, 'hand-made'), 'an unmanaged Secret stays');
    assert.ok(await configMap(a, 'operator-made'), "the operator's ConfigMap stays");
    assert.ok(await secret(a, 'billing-db'), "another delivery's Secret stays");
    assert.ok(await secret(a, 'db', AGENT_NS), 'the same name elsewhere stays');
    assert.ok(await secret(a, KEYS_SECRET, AGENT_NS), "the agent's keys stay");
    assert.ok(await a.apps.readNamespacedDeployment({ name: 'web', namespace: APPS }), 'workloads are never deleted');
    assert.equal(decoded(await secret(c, 'db')).password, 'VALUE-db-c', "cluster C's delivery is untouched");
    assert.deepEqual(await a.applier.remove('shop', APPS), [], 'removing again is a no-op');

    await c.applier.remove('shop', APPS);
    assert.equal(await secret(c, 'db'), undefined);
    assert.ok(await secret(c, 'tls'), "C's other delivery stays");
  });

  it('refuses a malformed payload before writing, naming the field and not the value', async () => {
    const bad = [
      { objects: [{ kind: 'Pod', name: 'x', data: {} }], rollout: [] },
      { objects: [{ kind: 'Secret', name: 'Bad_Name', data: {} }], rollout: [] },
      { objects: [{ kind: 'Secret', name: 'x', data: { k: 'VALUE not base64!' } }], rollout: [] },
      { objects: [{ kind: 'ConfigMap', name: 'x', type: 'Opaque', data: {} }], rollout: [] },
      { objects: [], rollout: [{ kind: 'Job', name: 'x' }] },
    ];
    for (const payload of bad) {
      await assert.rejects(
        a.applier.apply('shop', APPS, 5, payload as unknown as DeliveryPayload),
        (e: Error) => e instanceof DeliveryError && /payload\./.test(e.message) && !/VALUE/.test(e.message),
      );
    }
    await assert.rejects(a.applier.apply('bad/name', APPS, 1, { objects: [], rollout: [] }), DeliveryError);
    await assert.rejects(a.applier.apply('shop', APPS, 0, { objects: [], rollout: [] }), DeliveryError);
    assert.equal(await secret(a, 'x'), undefined);
  });

  it('the agent loop opens only its own bundles, refuses older or foreign ones, and catches up on hello', async () => {
    // Until the server lands, a map stands in for `GET sys/cofre/agent/bundles/:delivery`; the bundles in it are
    // really sealed, and really opened by each agent with its own keys.
    const keysB = (await loadOrCreateAgentKeys(b.kc, AGENT_NS)).keys;
    const keysC = (await loadOrCreateAgentKeys(c.kc, AGENT_NS)).keys;
    const seal = async (to: AgentKeys, clusterId: string, revision: number, payload: unknown, namespace = APPS) => ({
      delivery: 'web-config',
      namespace,
      revision,
      bundle: await sealBundle(
        to.sealingPublicKey,
        { clusterId, delivery: 'web-config', namespace, revision },
        Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)),
      ),
    });
    const payload = (pw: string): DeliveryPayload => ({
      objects: [secretObj('web-env', { PASSWORD: pw })],
      rollout: [],
    });
    const served = new Map<string, FetchedBundle>();
    const loop = (k: Kube, clusterId: string, keys: AgentKeys) =>
      new AgentLoop({
        clusterId,
        keys,
        applier: k.applier,
        lifecycle: new LifecycleReader(k.kc),
        kubeConfig: k.kc,
        fetchBundle: async (delivery) => served.get(`${clusterId}/${delivery}`)!,
        log: (msg, fields) => logs.push(JSON.stringify({ msg, ...fields })),
      });
    const agentB = loop(b, 'cluster-b', keysB);
    served.set('cluster-b/web-config', await seal(keysB, 'cluster-b', 1, payload('VALUE-b-1')));
    await agentB.hello([{ delivery: 'web-config', revision: 1 }]);
    assert.equal(decoded(await secret(b, 'web-env')).PASSWORD, 'VALUE-b-1');
    assert.equal(await secret(c, 'web-env'), undefined, 'only where it was delivered');
    let report = await agentB.report();
    assert.equal(report['web-config']?.revision, 1);
    assert.ok(report['web-config']?.applied_at);
    assert.equal(report['web-config']?.error, undefined);

    // Cluster C's bundle of revision 2, copied and presented to B's agent, does not open there.
    const forC = await seal(keysC, 'cluster-c', 2, payload('VALUE-c-2'));
    const refusedWith = async (bundle: FetchedBundle, revision: number, why: RegExp) => {
      served.set('cluster-b/web-config', bundle);
      await agentB.change({ delivery: 'web-config', revision });
      const r = (await agentB.report())['web-config']!;
      assert.match(r.error ?? '', why);
      assert.equal(r.revision, 1, 'still on the revision applied');
      assert.equal(decoded(await secret(b, 'web-env')).PASSWORD, 'VALUE-b-1');
    };
    await refusedWith(forC, 2, /does not open for this cluster/);
    // Sealed to B's key but bound to cluster C (or to another namespace than the one it claims): refused too.
    await refusedWith(await seal(keysB, 'cluster-c', 2, payload('VALUE-b-2')), 2, /does not open/);
    const otherNs = await seal(keysB, 'cluster-b', 2, payload('VALUE-b-2'), AGENT_NS);
    await refusedWith({ ...otherNs, namespace: APPS }, 2, /does not open/);
    // One changed byte.
    const good = await seal(keysB, 'cluster-b', 2, payload('VALUE-b-2'));
    const bytes = Buffer.from(good.bundle.ciphertext, 'base64url');
    bytes[3]! ^= 1;
    await refusedWith(
      { ...good, bundle: { ...good.bundle, ciphertext: bytes.toString('base64url') } },
      2,
      /does not open/,
    );
    // Not JSON: reported as such, without the parser quoting the plaintext.
    await refusedWith(await seal(keysB, 'cluster-b', 2, 'VALUE-not-json'), 2, /the payload is not JSON/);

    served.set('cluster-b/web-config', good);
    await agentB.change({ delivery: 'web-config', revision: 2 });
    assert.equal(decoded(await secret(b, 'web-env')).PASSWORD, 'VALUE-b-2');
    report = await agentB.report();
    assert.equal(report['web-config']?.revision, 2);
    assert.equal(report['web-config']?.error, undefined);
    // An older bundle is refused: the stream says 3, the fetch answers with revision 2 (a replay).
    await agentB.change({ delivery: 'web-config', revision: 3 });
    report = await agentB.report();
    assert.match(report['web-config']?.error ?? '', /revision 2 is older than 3; refused/);
    assert.equal(report['web-config']?.revision, 2);

    // A restarted agent (no memory) catches up on hello: an unchanged delivery is not written again...
    const rv = (await secret(b, 'web-env'))?.metadata?.resourceVersion;
    const restarted = loop(b, 'cluster-b', (await loadOrCreateAgentKeys(b.kc, AGENT_NS)).keys);
    await restarted.hello([{ delivery: 'web-config', revision: 2 }]);
    assert.equal((await secret(b, 'web-env'))?.metadata?.resourceVersion, rv);
    assert.equal((await restarted.report())['web-config']?.revision, 2);
    // ...and what was unpublished while it was away is removed, and only that.
    await b.core.createNamespacedSecret({
      namespace: APPS,
      body: { metadata: { name: 'other' }, stringData: { a: 'b' } },
    });
    await loop(b, 'cluster-b', keysB).hello([]);
    assert.equal(await secret(b, 'web-env'), undefined);
    assert.ok(await secret(b, 'other'));
    assert.ok(await secret(b, KEYS_SECRET, AGENT_NS));
    for (const r of Object.values(await agentB.report())) assert.equal(/VALUE|VkFMVUU/.test(JSON.stringify(r)), false);
  });

  it("the chart's agent-only install grants what the agent uses and no more", async () => {
    const tools = await kubeTools();
    const release = 'agent-rbac';
    const rendered = await run(tools.helm, [
      ...['template', 'agent', chart, '--namespace', release],
      ...['--set', 'server.enabled=false,operator.enabled=false,clusterAgent.enabled=true'],
      ...['--set', 'clusterAgent.namespaces={shop}'],
    ]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const kinds = [
      ...rendered.stdout.matchAll(/^kind: (\S+)\n(?:.*\n)*?\s{2}name: (\S+)\n(?:\s{2}namespace: (\S+))?/gm),
    ]
      .map((m) => `${m[1]}/${m[3] ?? ''}/${m[2]}`)
      .sort();
    assert.deepEqual(kinds, [
      'ClusterRole//agent-cofre-cluster-agent',
      `Deployment/${release}/agent-cofre-cluster-agent`,
      `Role/${release}/agent-cofre-cluster-agent-keys`,
      `RoleBinding/${release}/agent-cofre-cluster-agent-keys`,
      'RoleBinding/shop/agent-cofre-cluster-agent',
      `ServiceAccount/${release}/agent-cofre-cluster-agent`,
    ]);
    assert.doesNotMatch(rendered.stdout, /\*/, 'no wildcards');
    for (const ns of [release, 'shop']) await c.core.createNamespace({ body: { metadata: { name: ns } } });
    const applied = await run(
      tools.kubectl,
      ['--kubeconfig', c.cluster.kubeconfigPath, 'apply', '-f', '-'],
      rendered.stdout,
    );
    assert.equal(applied.code, 0, applied.stderr);

    // The agent's own identity: a token of its ServiceAccount, as its pod would hold.
    const { status } = await c.core.createNamespacedServiceAccountToken({
      namespace: release,
      name: 'agent-cofre-cluster-agent',
      body: { spec: { audiences: [c.cluster.server], expirationSeconds: 600 } },
    });
    const kcAgent = new k8s.KubeConfig();
    kcAgent.loadFromOptions({
      clusters: [{ name: 'c', server: c.cluster.server, caData: Buffer.from(c.cluster.caCert).toString('base64') }],
      users: [{ name: 'agent', token: status!.token }],
      contexts: [{ name: 'c', cluster: 'c', user: 'agent' }],
      currentContext: 'c',
    });
    await c.apps.createNamespacedDeployment({
      namespace: 'shop',
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
        },
      },
    });

    // Everything the agent does works under it...
    const keys = await loadOrCreateAgentKeys(kcAgent, release);
    assert.equal(keys.created, true);
    assert.equal((await loadOrCreateAgentKeys(kcAgent, release)).created, false);
    const applier = new DeliveryApplier(kcAgent);
    const rollout = [{ kind: 'Deployment' as const, name: 'web' }];
    const rev = (n: number): DeliveryPayload => ({
      objects: [
        secretObj('db', { pw: `VALUE-rbac-${n}` }, { immutable: true }),
        configObj('settings', { n: String(n) }),
      ],
      rollout,
    });
    assert.deepEqual(await applier.apply('shop-app', 'shop', 1, rev(1)), {
      written: ['Secret/db', 'ConfigMap/settings'],
      deleted: [],
      rolled: ['Deployment/web'],
    });
    assert.deepEqual((await applier.apply('shop-app', 'shop', 2, rev(2))).written, ['Secret/db', 'ConfigMap/settings']);
    assert.deepEqual(await new LifecycleReader(kcAgent).read('shop', rollout), {});
    const agent = new AgentLoop({
      clusterId: 'cluster-c',
      keys: keys.keys,
      applier,
      lifecycle: new LifecycleReader(kcAgent),
      kubeConfig: kcAgent,
      namespaces: ['shop'],
      fetchBundle: () => Promise.reject(new Error('nothing to fetch')),
    });
    await agent.hello([]);
    assert.equal(await secret(c, 'db', 'shop'), undefined, 'removed under the agent identity');

    // ...and nothing outside it does.
    const forbidden = (e: unknown) =>
      /forbidden/i.test(String((e as Error).message ?? e)) || (e as { code?: number }).code === 403;
    await assert.rejects(
      applier.apply('shop-app', APPS, 1, rev(1)),
      (e: Error) => e instanceof DeliveryError && forbidden(e),
    );
    const agentCore = kcAgent.makeApiClient(k8s.CoreV1Api);
    await c.core.createNamespacedSecret({
      namespace: release,
      body: { metadata: { name: 'not-yours' }, stringData: { a: 'b' } },
    });
    await assert.rejects(agentCore.readNamespacedSecret({ name: 'not-yours', namespace: release }), forbidden);
    // Its enrolment Secret (not created here) is readable: not found, not forbidden.
    await assert.rejects(
      agentCore.readNamespacedSecret({ name: 'cofre-cluster-agent-enrolment', namespace: release }),
      (e: { code?: number }) => e.code === 404,
    );
    await assert.rejects(agentCore.listSecretForAllNamespaces({}), forbidden);
    await assert.rejects(agentCore.listNamespacedSecret({ namespace: 'kube-system' }), forbidden);
    await assert.rejects(
      kcAgent.makeApiClient(k8s.AppsV1Api).deleteNamespacedDeployment({ name: 'web', namespace: 'shop' }),
      forbidden,
    );
    await assert.rejects(
      agentCore.createNamespacedEvent({ namespace: 'shop', body: { metadata: { name: 'e' }, involvedObject: {} } }),
      forbidden,
    );
  });

  it('never logs a value', () => {
    assert.ok(logs.length > 0, 'the applier logged what it did');
    assert.equal(/VALUE|VkFMVUU/.test(leakSurfaces()), false, leakSurfaces());
  });
});

// Proves the test environment itself: a real kube-apiserver (+ controller manager) that later tests rely on for
// service-account tokens, TokenReview and rollouts. A missing component fails here with a message on how to get it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { get, startCluster, type TestCluster } from '../scripts/test-cluster.js';

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const external = Boolean(process.env.COFRE_TEST_KUBECONFIG);

describe('real Kubernetes control plane', () => {
  let cluster: TestCluster;
  let kc: k8s.KubeConfig;
  const ns = `env-check-${Date.now().toString(36)}`; // unique: COFRE_TEST_KUBECONFIG may name a long-lived cluster

  let startMs = 0;

  before(async () => {
    const started = Date.now();
    cluster = await startCluster({ name: 'kube-cluster-test' });
    startMs = Date.now() - started;
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath); // the kubeconfig we wrote is what clients use
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  });
  after(async () => {
    // An existing cluster outlives this test: leave it as found. A fresh one is thrown away whole by stop().
    if (external && kc)
      await kc
        .makeApiClient(k8s.CoreV1Api)
        .deleteNamespace({ name: ns })
        .catch(() => {});
    await cluster?.stop();
  });

  it('issues service-account tokens that a TokenReview authenticates, and rejects garbage', async (t) => {
    t.diagnostic(`cluster ${cluster.server} was ready in ${startMs} ms`);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'app',
      namespace: ns,
      body: { spec: { audiences: ['cofre'], expirationSeconds: 600 } },
    });
    const token = tr.status?.token;
    assert.ok(token, 'TokenRequest returned a token');
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(claims.iss, cluster.serviceAccountIssuer);
    assert.deepEqual(claims.aud, ['cofre']);

    const review = await authn.createTokenReview({ body: { spec: { token, audiences: ['cofre'] } } });
    assert.equal(review.status?.authenticated, true, JSON.stringify(review.status));
    assert.equal(review.status?.user?.username, `system:serviceaccount:${ns}:app`);
    assert.deepEqual(review.status?.audiences, ['cofre']);

    const bad = await authn.createTokenReview({ body: { spec: { token: 'not-a-token', audiences: ['cofre'] } } });
    assert.notEqual(bad.status?.authenticated, true);
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA'); // signature no longer matches
    const badSig = await authn.createTokenReview({ body: { spec: { token: forged, audiences: ['cofre'] } } });
    assert.notEqual(badSig.status?.authenticated, true);
  });

  it('rolls a Deployment out to a second ReplicaSet when its pod template changes', async (t) => {
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          // No kubelet runs pods here; the image is never pulled.
          template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] } },
        },
      },
    });
    const replicaSets = async (n: number) => {
      const list = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=web' });
      return list.items.length >= n ? list.items : undefined;
    };
    await waitFor('the first ReplicaSet (is kube-controller-manager running?)', 30_000, () => replicaSets(1));

    // What `kubectl rollout restart` does: a new pod-template annotation.
    const restartedAt = { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() };
    await apps.patchNamespacedDeployment(
      { name: 'web', namespace: ns, body: { spec: { template: { metadata: { annotations: restartedAt } } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    const started = Date.now();
    const both = await waitFor('a second ReplicaSet after the template change', 15_000, () => replicaSets(2));
    assert.equal(new Set(both.map((rs) => rs.metadata?.name)).size, 2);
    t.diagnostic(`second ReplicaSet ${Date.now() - started} ms after the patch`);
  });

  it('runs a second, independent cluster at the same time', async (t) => {
    if (external) {
      t.diagnostic('COFRE_TEST_KUBECONFIG names one existing cluster: only checked that it answers');
      assert.equal((await get(`${cluster.server}/readyz`, cluster.caCert)).status, 200);
      return;
    }
    const started = Date.now();
    const other = await startCluster({ name: 'kube-cluster-test-b', controllerManager: false });
    t.diagnostic(`second cluster ready in ${Date.now() - started} ms`);
    try {
      assert.notEqual(other.server, cluster.server);
      assert.notEqual(other.serviceAccountIssuer, cluster.serviceAccountIssuer);
      assert.equal((await get(`${cluster.server}/readyz`, cluster.caCert)).status, 200);
      assert.equal((await get(`${other.server}/readyz`, other.caCert)).status, 200);
      // Clients verify TLS: one cluster's CA does not vouch for the other's server.
      await assert.rejects(get(`${cluster.server}/readyz`, other.caCert), /certificate/);
      // Separate stores: the namespace made in the first cluster is absent from the second.
      const otherKc = new k8s.KubeConfig();
      otherKc.loadFromFile(other.kubeconfigPath);
      await assert.rejects(otherKc.makeApiClient(k8s.CoreV1Api).readNamespace({ name: ns }), { code: 404 });
      // The first cluster's admin token means nothing to the second.
      assert.equal((await get(`${other.server}/api/v1/namespaces`, other.caCert, cluster.adminToken)).status, 401);
    } finally {
      await other.stop();
    }
  });
});

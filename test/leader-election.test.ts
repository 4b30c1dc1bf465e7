import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { runLeaderElection } from '../src/kube/operator/leader.js';

async function until(check: () => boolean, what: string, ms: number): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

/** Leader election on a real coordination.k8s.io Lease: one leader at a time, fast hand-over. */
describe('leader election', () => {
  let cluster: TestCluster;
  let kc: KubeConfig;
  before(async () => {
    cluster = await startCluster({ name: 'leader', controllerManager: false });
    kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'cofre-system' } } });
  });
  after(() => cluster?.stop());

  it('elects exactly one leader, hands over on stop and after a crash, never two at once', async (t) => {
    const leading = new Set<string>();
    let overlap = false;
    const candidate = (id: string) =>
      runLeaderElection({
        kubeConfig: kc,
        namespace: 'cofre-system',
        name: 'cofre-operator',
        identity: id,
        leaseDurationSeconds: 3,
        renewIntervalMs: 500,
        retryIntervalMs: 200,
        onStartedLeading: () => {
          leading.add(id);
          if (leading.size > 1) overlap = true;
        },
        onStoppedLeading: () => void leading.delete(id),
      });
    const a = candidate('a');
    const byId = { a } as Record<string, ReturnType<typeof candidate>>;
    // A failed assertion must not leave candidates campaigning: the test process would never end.
    t.after(() => Promise.all(Object.values(byId).map((e) => e.stop())));
    await until(() => leading.size === 1, 'a first leader', 10_000);
    const b = candidate('b');
    const c = candidate('c');
    Object.assign(byId, { b, c });
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(leading.size, 1, 'still exactly one leader');
    const first = [...leading][0]!;
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'cofre-operator', namespace: 'cofre-system' });
    assert.equal(lease.spec?.holderIdentity, first);

    // A clean stop gives the Lease up (so another candidate need not wait for it to expire): once stop() has
    // returned, the Lease no longer names the old leader. The hand-over itself is timed loosely, since a busy
    // machine slows the candidates' retries too.
    await byId[first]!.stop();
    const released = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'cofre-operator', namespace: 'cofre-system' });
    assert.notEqual(released.spec?.holderIdentity, first, 'the stopped leader still holds the Lease');
    await until(() => leading.size === 1 && !leading.has(first), 'hand-over', 5_000);

    assert.equal(overlap, false, 'two leaders at once');
  });

  it('stop() gives the Lease up even when it races a renewal on the wire', async () => {
    // Renewing every 10 ms keeps a renewal in flight almost always, so a stop() that does not wait for it
    // has its release overwritten by the renewal landing after it.
    const leases = kc.makeApiClient(CoordinationV1Api);
    for (let round = 0; round < 15; round++) {
      let leading = false;
      const e = runLeaderElection({
        kubeConfig: kc,
        namespace: 'cofre-system',
        name: 'stop-race',
        identity: `r${round}`,
        leaseDurationSeconds: 3,
        renewIntervalMs: 10,
        retryIntervalMs: 10,
        onStartedLeading: () => void (leading = true),
        onStoppedLeading: () => void (leading = false),
      });
      try {
        await until(() => leading, 'leading', 10_000);
        await new Promise((r) => setTimeout(r, 5 + round * 7));
      } finally {
        await e.stop();
      }
      const lease = await leases.readNamespacedLease({ name: 'stop-race', namespace: 'cofre-system' });
      assert.equal(lease.spec?.holderIdentity, undefined, `round ${round}: the stopped leader still holds the Lease`);
      assert.equal(leading, false);
    }
  });

  it('a leader killed with SIGKILL (no release) is replaced once its lease expires, not before', async () => {
    const script = `
      import { KubeConfig } from '@kubernetes/client-node';
      import { runLeaderElection } from './src/kube/operator/leader.ts';
      const kc = new KubeConfig();
      kc.loadFromFile(${JSON.stringify(cluster.kubeconfigPath)});
      runLeaderElection({ kubeConfig: kc, namespace: 'cofre-system', name: 'crash-lease', identity: 'child',
        leaseDurationSeconds: 3, renewIntervalMs: 500, retryIntervalMs: 200,
        onStartedLeading: () => console.log('LEADING'), onStoppedLeading: () => {} });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    let survivor: ReturnType<typeof runLeaderElection> | undefined;
    try {
      await until(() => out.includes('LEADING'), 'child leading', 20_000);
      let leaderSince = 0;
      survivor = runLeaderElection({
        kubeConfig: kc,
        namespace: 'cofre-system',
        name: 'crash-lease',
        identity: 'survivor',
        leaseDurationSeconds: 3,
        renewIntervalMs: 500,
        retryIntervalMs: 200,
        onStartedLeading: () => void (leaderSince = Date.now()),
        onStoppedLeading: () => undefined,
      });
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(leaderSince, 0, 'the survivor must not lead while the child renews');
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await until(() => leaderSince > 0, 'take-over', 10_000);
      const gap = leaderSince - killedAt;
      assert.ok(gap >= 1000 && gap < 6000, `take-over ${gap} ms after the kill (lease 3 s)`);
    } finally {
      child.kill('SIGKILL');
      await survivor?.stop();
    }
  });
});

// Issue 20's end-to-end test: a real Cofre server, three real kube-apiservers (one with a controller manager so the
// Deployment makes ReplicaSets and pods), and one `cofre cluster-agent` process per cluster, spawned as the command
// (through tsx, as other tests spawn the CLI). Placement by labels, relabelling, rotation with a rollout and the
// lifecycle map in the placement status, unpublishing, an agent killed and restarted, a deregistered cluster's
// agent refused; and never a secret value in an agent's log or a placement status.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import type { Storage } from '../src/core/storage.js';
import { apiClient, startServer, type InProcessServer } from './support.js';
import { startClusterAgent, type AgentProcess } from './cluster-agent-process.js';
import { poll } from './poll.js';
import { encodedForms, etcdDump, holding } from './kube-support.js';

const AGENT_NS = 'cofre-agent';
const APP_NS = 'shop';
const VALUES = ['pw-e2e-first-5c1f0a', 'pw-e2e-rotated-9b7e22', 'pw-e2e-while-down-3d4a81', 'pw-e2e-restart-77c0e4'];

/** Values delivered only to the eu clusters, and only to the us cluster (the etcd dump test). */
const DUMP_VALUES = { eu: 'pw-dump-eu-only-a61f0c3d', us: 'pw-dump-us-only-e03b97f2' };

/** Every entry of a storage adapter (its key as part of what is stored), walking its one-level lists. */
async function storageDump(storage: Storage, prefix = ''): Promise<{ key: string; value: Buffer }[]> {
  const out: { key: string; value: Buffer }[] = [];
  for (const name of await storage.list(prefix)) {
    const key = prefix + name;
    if (name.endsWith('/')) out.push(...(await storageDump(storage, key)));
    else out.push({ key, value: Buffer.concat([Buffer.from(key), (await storage.get(key)) ?? Buffer.alloc(0)]) });
  }
  return out;
}

interface ClusterStatus {
  revision?: number;
  pods?: Record<string, number>;
}

interface Member {
  name: string;
  cluster: TestCluster;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  bootstrapToken: string;
  agent?: AgentProcess;
  /** Everything the agent processes of this cluster wrote (stdout and stderr). */
  log: string;
}

describe('multi-cluster end to end: three clusters, one cofre cluster-agent each', () => {
  let server: InProcessServer;
  // The server's SQLite file outlives a server restart.
  const serverDir = mkdtempSync(path.join(tmpdir(), 'cofre-mc-e2e-'));
  const members: Record<string, Member> = {};
  const statuses: string[] = [];

  function startAgent(m: Member, withToken: boolean): void {
    m.agent = startClusterAgent({
      serverUrl: server.url,
      kubeconfigPath: m.cluster.kubeconfigPath,
      namespace: AGENT_NS,
      ...(withToken ? { bootstrapToken: m.bootstrapToken } : {}),
      onOutput: (chunk) => (m.log += chunk),
    });
  }

  async function stopAgent(m: Member, signal: NodeJS.Signals): Promise<number | null> {
    const agent = m.agent;
    m.agent = undefined;
    return agent ? agent.stop(signal) : null;
  }

  const secretValue = async (m: Member, name: string): Promise<string | undefined> => {
    try {
      const s = await m.core.readNamespacedSecret({ name, namespace: APP_NS });
      return Buffer.from(s.data?.password ?? '', 'base64').toString('utf8');
    } catch {
      return undefined;
    }
  };
  const exists = async (what: 'secret' | 'configmap', m: Member, name: string): Promise<boolean> => {
    try {
      if (what === 'secret') await m.core.readNamespacedSecret({ name, namespace: APP_NS });
      else await m.core.readNamespacedConfigMap({ name, namespace: APP_NS });
      return true;
    } catch {
      return false;
    }
  };
  const placement = async (): Promise<
    Record<string, unknown> & { status: { clusters: Record<string, ClusterStatus | undefined> } }
  > => {
    const res = await server.api.call('GET', 'sys/cofre/placements/shop-eu');
    assert.equal(res.status, 200, res.text);
    statuses.push(res.text);
    return res.body.data;
  };
  const revisionOf = async (): Promise<number> =>
    (await server.api.call('GET', 'sys/cofre/deliveries/shop')).body.data.revision as number;

  before(async () => {
    server = await startServer({ dir: serverDir });
    const kv = await server.api.call('PUT', 'secret/data/app/db', {
      body: { data: { password: VALUES[0], user: 'app' } },
    });
    assert.equal(kv.status, 200, kv.text);
    const clusters = await Promise.all([
      startCluster({ name: 'mc-eu-1', controllerManager: true }),
      startCluster({ name: 'mc-eu-2', controllerManager: false }),
      startCluster({ name: 'mc-us-1', controllerManager: false }),
    ]);
    const labels: Record<string, Record<string, string>> = {
      'eu-1': { region: 'eu', tier: 'store' },
      'eu-2': { region: 'eu', tier: 'hq' },
      'us-1': { region: 'us', tier: 'store' },
    };
    for (const [i, name] of ['eu-1', 'eu-2', 'us-1'].entries()) {
      const cluster = clusters[i]!;
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const apps = kc.makeApiClient(k8s.AppsV1Api);
      for (const ns of [AGENT_NS, APP_NS]) await core.createNamespace({ body: { metadata: { name: ns } } });
      // What the agent did not create and must never touch.
      await core.createNamespacedSecret({
        namespace: APP_NS,
        body: { metadata: { name: 'bystander' }, stringData: { note: 'not cofre' } },
      });
      await apps.createNamespacedDeployment({
        namespace: APP_NS,
        body: {
          metadata: { name: 'shop' },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'shop' } },
            // No kubelet runs pods here, so new pods never become ready: old and new revisions stay side by side.
            strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '100%', maxUnavailable: 0 } },
            template: {
              metadata: { labels: { app: 'shop' } },
              spec: { containers: [{ name: 'shop', image: 'nginx' }] },
            },
          },
        },
      });
      const res = await server.api.call('PUT', `sys/cofre/clusters/${name}`, { body: { labels: labels[name] } });
      assert.equal(res.status, 200, res.text);
      members[name] = { name, cluster, core, apps, bootstrapToken: res.body.data.bootstrap_token as string, log: '' };
    }
    for (const m of Object.values(members)) startAgent(m, true);
    for (const m of Object.values(members))
      await poll(`${m.name} enrolled`, async () => {
        const res = await server.api.call('GET', `sys/cofre/clusters/${m.name}`);
        return res.body.data?.state === 'enrolled' && res.body.data?.last_seen ? true : undefined;
      });
  });

  after(async () => {
    for (const m of Object.values(members)) await stopAgent(m, 'SIGTERM');
    await Promise.all(Object.values(members).map((m) => m.cluster.stop()));
    await server?.stop();
    rmSync(serverDir, { recursive: true, force: true });
  });

  it('the agents enrolled and kept their enrolment in a Secret beside the keys', async () => {
    for (const m of Object.values(members)) {
      assert.match(m.log, /cluster enrolled/);
      const saved = await m.core.readNamespacedSecret({ name: 'cofre-cluster-agent-enrolment', namespace: AGENT_NS });
      const id = Buffer.from(saved.data!.cluster_id!, 'base64').toString();
      assert.equal((await server.api.call('GET', `sys/cofre/clusters/${m.name}`)).body.data.cluster_id, id);
    }
  });

  it('a delivery placed with region=eu reaches exactly the two eu clusters', async () => {
    let res = await server.api.call('PUT', 'sys/cofre/deliveries/shop', {
      body: {
        namespace: APP_NS,
        items: [
          { name: 'shop-db', mode: 'secret', kv: { mount: 'secret', path: 'app/db', keys: ['password'] } },
          { name: 'shop-config', mode: 'configmap', literal: { LOG_LEVEL: 'info' } },
        ],
        rollout: [{ kind: 'Deployment', name: 'shop' }],
      },
    });
    assert.equal(res.status, 200, res.text);
    res = await server.api.call('PUT', 'sys/cofre/placements/shop-eu', {
      body: { delivery: 'shop', selector: { matchLabels: { region: 'eu' } } },
    });
    assert.equal(res.status, 204, res.text);
    const { 'eu-1': eu1, 'eu-2': eu2, 'us-1': us1 } = members as Record<string, Member>;
    for (const m of [eu1!, eu2!]) {
      await poll(`the Secret in ${m.name}`, async () => (await secretValue(m, 'shop-db')) === VALUES[0]);
      // The agent writes the objects one after another, then rolls: each is waited for, not read at once.
      await poll(`the ConfigMap in ${m.name}`, async () => exists('configmap', m, 'shop-config'));
      const revision = String(await revisionOf());
      await poll(`the Deployment in ${m.name} rolled`, async () => {
        const d = await m.apps.readNamespacedDeployment({ name: 'shop', namespace: APP_NS });
        return d.spec?.template.metadata?.annotations?.['cofre.dev/revision'] === revision;
      });
    }
    // Both eu agents have applied it and reported since: us-1, following the same stream, has nothing.
    await poll('both eu clusters reported', async () => {
      const s = (await placement()).status.clusters;
      return s['eu-1']?.revision === (await revisionOf()) && s['eu-2']?.revision === (await revisionOf());
    });
    assert.equal(await exists('secret', us1!, 'shop-db'), false);
    assert.equal(await exists('configmap', us1!, 'shop-config'), false);
    assert.deepEqual(Object.keys((await placement()).status.clusters).sort(), ['eu-1', 'eu-2']);
  });

  it("a dump of each cluster's etcd and of the server's storage shows no value from another cluster", async () => {
    // One value only for the eu clusters, another only for us-1 (labels as registered: eu-1 and eu-2 region=eu).
    const kvBodies = { eu: DUMP_VALUES.eu, us: DUMP_VALUES.us };
    for (const [region, password] of Object.entries(kvBodies)) {
      let res = await server.api.call('PUT', `secret/data/dump/${region}`, { body: { data: { password } } });
      assert.equal(res.status, 200, res.text);
      res = await server.api.call('PUT', `sys/cofre/deliveries/dump-${region}`, {
        body: {
          namespace: APP_NS,
          items: [{ name: `dump-${region}`, mode: 'secret', kv: { mount: 'secret', path: `dump/${region}` } }],
        },
      });
      assert.equal(res.status, 200, res.text);
      res = await server.api.call('PUT', `sys/cofre/placements/dump-${region}`, {
        body: { delivery: `dump-${region}`, selector: { matchLabels: { region } } },
      });
      assert.equal(res.status, 204, res.text);
    }
    const regionOf: Record<string, 'eu' | 'us'> = { 'eu-1': 'eu', 'eu-2': 'eu', 'us-1': 'us' };
    const reported = async (placementName: string, cluster: string): Promise<boolean> => {
      const res = await server.api.call('GET', `sys/cofre/placements/${placementName}`);
      return res.body.data?.status?.clusters?.[cluster]?.revision === 1;
    };
    for (const m of Object.values(members)) {
      const region = regionOf[m.name]!;
      await poll(
        `dump-${region} in ${m.name}`,
        async () => (await secretValue(m, `dump-${region}`)) === kvBodies[region],
      );
      await poll(`${m.name} reported dump-${region}`, () => reported(`dump-${region}`, m.name));
    }
    const forms = {
      eu: encodedForms(DUMP_VALUES.eu),
      us: encodedForms(DUMP_VALUES.us),
      shop: encodedForms(VALUES[0]!),
    };

    /** Asserts what each etcd holds; returns the keys that hold a value they must not. */
    const checkEtcds = async (): Promise<Record<string, string[]>> => {
      const wrong: Record<string, string[]> = {};
      for (const m of Object.values(members)) {
        assert.ok(m.cluster.etcdUrl, 'the test cluster exposes its etcd');
        const dump = await etcdDump(m.cluster.etcdUrl);
        assert.ok(
          dump.some((e) => e.key.startsWith('/registry/secrets/')),
          `${m.name}: the dump holds Secrets`,
        );
        const own = regionOf[m.name]!;
        const other = own === 'eu' ? 'us' : 'eu';
        wrong[m.name] = holding(dump, forms[other]);
        if (own === 'us') wrong[m.name]!.push(...holding(dump, forms.shop));
        // Its own value: only where the Kubernetes Secret is kept, as that Secret holds it.
        assert.deepEqual(holding(dump, forms[own]), [`/registry/secrets/${APP_NS}/dump-${own}`], m.name);
      }
      return wrong;
    };
    assert.deepEqual(await checkEtcds(), { 'eu-1': [], 'eu-2': [], 'us-1': [] });
    for (const m of [members['eu-1']!, members['eu-2']!]) {
      assert.deepEqual(holding(await etcdDump(m.cluster.etcdUrl!), forms.shop), [
        `/registry/secrets/${APP_NS}/shop-db`,
      ]);
    }

    // The server's storage: every entry (key and value) as its storage adapter holds it (below the barrier: each
    // row of the SQLite file, which the server holds locked), and the bytes of the file and its write-ahead log.
    const rows = await storageDump(server.cofre.storage);
    assert.ok(
      rows.some((r) => r.key.includes('cofre-clusters/bundles/')),
      'the dump holds the sealed bundles',
    );
    const stored = [
      ...rows,
      ...['cofre.db', 'cofre.db-wal']
        .filter((f) => existsSync(path.join(serverDir, f)))
        .map((f) => ({ key: f, value: readFileSync(path.join(serverDir, f)) })),
    ];
    for (const [what, encoded] of Object.entries(forms)) {
      assert.deepEqual(holding(stored, encoded), [], `the server's storage holds the ${what} value`);
    }

    // The check can fail: published to eu-1 as well, the us value shows up in eu-1's etcd.
    let res = await server.api.call('PUT', 'sys/cofre/placements/dump-us-wrong', {
      body: { delivery: 'dump-us', clusters: ['eu-1'] },
    });
    assert.equal(res.status, 204, res.text);
    await poll('dump-us in eu-1', async () => (await secretValue(members['eu-1']!, 'dump-us')) === DUMP_VALUES.us);
    assert.deepEqual((await checkEtcds())['eu-1'], [`/registry/secrets/${APP_NS}/dump-us`]);
    res = await server.api.call('DELETE', 'sys/cofre/placements/dump-us-wrong');
    assert.equal(res.status, 204, res.text);
    await poll('dump-us gone from eu-1', async () => !(await exists('secret', members['eu-1']!, 'dump-us')));
    assert.deepEqual(await checkEtcds(), { 'eu-1': [], 'eu-2': [], 'us-1': [] });

    // Unpublished, so that what follows sees only the shop delivery.
    for (const region of ['eu', 'us']) {
      res = await server.api.call('DELETE', `sys/cofre/placements/dump-${region}`);
      assert.equal(res.status, 204, res.text);
    }
    for (const m of Object.values(members)) {
      const region = regionOf[m.name]!;
      await poll(`dump-${region} gone from ${m.name}`, async () => !(await exists('secret', m, `dump-${region}`)));
    }
    for (const region of ['eu', 'us']) await server.api.call('DELETE', `sys/cofre/deliveries/dump-${region}`);
  });

  it('env and file items are written as labelled Secrets, and the placement status says why', async () => {
    const us1 = members['us-1']!;
    let res = await server.api.call('PUT', 'sys/cofre/deliveries/inpod', {
      body: {
        namespace: APP_NS,
        items: [
          { name: 'inpod-env', mode: 'env', kv: { mount: 'secret', path: 'app/db', keys: ['password'] } },
          { name: 'inpod-files', mode: 'file', kv: { mount: 'secret', path: 'app/db' } },
        ],
      },
    });
    assert.equal(res.status, 200, res.text);
    res = await server.api.call('PUT', 'sys/cofre/placements/inpod', {
      body: { delivery: 'inpod', clusters: ['us-1'] },
    });
    assert.equal(res.status, 204, res.text);
    for (const [name, mode, keys] of [
      ['inpod-env', 'env', ['password']],
      ['inpod-files', 'file', ['password', 'user']],
    ] as const) {
      const secret = await poll(`the Secret ${name} in us-1`, async () =>
        us1.core.readNamespacedSecret({ name, namespace: APP_NS }),
      );
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), keys);
      assert.equal(Buffer.from(secret.data!.password!, 'base64').toString(), VALUES[0]);
      assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'cofre');
      assert.equal(secret.metadata?.labels?.['cofre.dev/delivery'], 'inpod');
      assert.equal(secret.metadata?.annotations?.['cofre.dev/requested-mode'], mode);
    }
    const status = await poll('the notes in the placement status', async () => {
      const res = await server.api.call('GET', 'sys/cofre/placements/inpod');
      const s = res.body.data?.status?.clusters?.['us-1'];
      return s?.revision === 1 && s.notes?.length === 2 ? s : undefined;
    });
    assert.deepEqual(status.notes, [
      `Secret ${APP_NS}/inpod-env was asked for as environment variables; written as a Secret because in-pod ` +
        'delivery is not available',
      `Secret ${APP_NS}/inpod-files was asked for as in-memory files; written as a Secret because in-pod delivery ` +
        'is not available',
    ]);
    assert.equal(status.error, null);
    // Unpublished: both go, and the eu clusters never had them.
    res = await server.api.call('DELETE', 'sys/cofre/placements/inpod');
    assert.equal(res.status, 204, res.text);
    for (const name of ['inpod-env', 'inpod-files']) {
      await poll(`${name} removed`, async () => !(await exists('secret', us1, name)));
      for (const m of [members['eu-1']!, members['eu-2']!]) assert.equal(await exists('secret', m, name), false);
    }
    assert.equal((await server.api.call('DELETE', 'sys/cofre/deliveries/inpod')).status, 204);
  });

  it('relabelling provisions a cluster that now matches and deprovisions one that no longer does', async () => {
    const { 'eu-2': eu2, 'us-1': us1 } = members as Record<string, Member>;
    let res = await server.api.call('PUT', 'sys/cofre/clusters/us-1', {
      body: { labels: { region: 'eu', tier: 'store' } },
    });
    assert.equal(res.status, 204, res.text);
    res = await server.api.call('PUT', 'sys/cofre/clusters/eu-2', { body: { labels: { region: 'us', tier: 'hq' } } });
    assert.equal(res.status, 204, res.text);
    await poll('the Secret in us-1', async () => (await secretValue(us1!, 'shop-db')) === VALUES[0]);
    assert.ok(await exists('configmap', us1!, 'shop-config'));
    await poll('eu-2 deprovisioned', async () => !(await exists('secret', eu2!, 'shop-db')));
    await poll('eu-2 ConfigMap gone', async () => !(await exists('configmap', eu2!, 'shop-config')));
    // Nothing else: the Deployment it rolled and the Secret it never made are still there.
    await eu2!.apps.readNamespacedDeployment({ name: 'shop', namespace: APP_NS });
    assert.ok(await exists('secret', eu2!, 'bystander'));
    await poll('the placement selects eu-1 and us-1', async () => {
      const keys = Object.keys((await placement()).status.clusters).sort();
      return keys.join() === 'eu-1,us-1';
    });
  });

  it('a KV write rotates the Secret in every matching cluster within seconds and rolls the Deployment', async () => {
    const { 'eu-1': eu1, 'us-1': us1 } = members as Record<string, Member>;
    const old = await revisionOf();
    // The controller manager made the first revision's pod before the rotation, so both show side by side.
    await poll('a pod on the first revision in eu-1', async () => {
      const pods = (await placement()).status.clusters['eu-1']?.pods;
      return (pods?.[String(old)] ?? 0) >= 1;
    });
    const started = Date.now();
    const kv = await server.api.call('PUT', 'secret/data/app/db', {
      body: { data: { password: VALUES[1], user: 'app' } },
    });
    assert.equal(kv.status, 200, kv.text);
    for (const m of [eu1!, us1!])
      await poll(`the rotated Secret in ${m.name}`, async () => (await secretValue(m, 'shop-db')) === VALUES[1], 5000);
    assert.ok(Date.now() - started < 5000, `rotation took ${Date.now() - started} ms`);
    const fresh = await revisionOf();
    assert.equal(fresh, old + 1);
    // The agent rolls the Deployment after writing the objects: waited for, not read as soon as the Secret shows.
    await poll(
      'the Deployment in eu-1 rolled to the new revision',
      async () => {
        const d = await eu1!.apps.readNamespacedDeployment({ name: 'shop', namespace: APP_NS });
        return d.spec?.template.metadata?.annotations?.['cofre.dev/revision'] === String(fresh);
      },
      5000,
    );
    // The status shows the new revision per cluster, and eu-1's lifecycle map the pods on the old and the new one.
    const status = await poll('the lifecycle map with both revisions', async () => {
      const s = (await placement()).status.clusters;
      const pods = s['eu-1']?.pods;
      return s['eu-1']?.revision === fresh &&
        s['us-1']?.revision === fresh &&
        (pods?.[String(fresh)] ?? 0) >= 1 &&
        (pods?.[String(old)] ?? 0) >= 1
        ? s
        : undefined;
    });
    assert.deepEqual(status['us-1']?.pods, {}, 'no controller manager in us-1: no pods');
  });

  it('an agent killed and restarted catches up, without the bootstrap token', async () => {
    const eu1 = members['eu-1']!;
    await stopAgent(eu1, 'SIGKILL');
    const kv = await server.api.call('PUT', 'secret/data/app/db', {
      body: { data: { password: VALUES[2], user: 'app' } },
    });
    assert.equal(kv.status, 200, kv.text);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await secretValue(eu1, 'shop-db'), VALUES[1], 'nothing applies it while the agent is down');
    const before = eu1.log.length;
    startAgent(eu1, false);
    await poll('eu-1 caught up', async () => (await secretValue(eu1, 'shop-db')) === VALUES[2]);
    assert.match(eu1.log.slice(before), /cluster enrolment loaded/);
    assert.doesNotMatch(eu1.log.slice(before), /cluster enrolled"/);
    await poll('us-1 has it too', async () => (await secretValue(members['us-1']!, 'shop-db')) === VALUES[2]);
  });

  // This failed at times (2026-12-03): the agents reconnected at once, but a write racing the first agent's
  // reconnection made no revision, because the cluster service subscribed to the change log after the write had
  // taken its index and before it was committed (fixed in ChangeLog.lastIndex; src/core/change-log.test.ts).
  // And again (2026-12-06, about once in 50 restarts): the subscription read the write's entry from the store
  // before the server had finished the commit, so the KV secret read for it was still the old value (fixed in
  // ChangeLog.subscribe: the backlog ends at what has been told).
  it('after a server restart the agents reconnect, log in again and catch up', async () => {
    const port = Number(new URL(server.url).port);
    const { keys, rootToken } = server;
    await server.stop();
    const kv = { password: VALUES[3], user: 'app' };
    server = await startServer({ dir: serverDir, port, initialised: false });
    for (const key of keys.slice(0, 2)) await server.api.call('PUT', 'sys/unseal', { body: { key } });
    server = { ...server, keys, rootToken, api: apiClient(server.url, rootToken) };
    // Written as the agents come back, before or after the first one reconnects: a revision is made either way.
    const res = await server.api.call('PUT', 'secret/data/app/db', { body: { data: kv } });
    assert.equal(res.status, 200, res.text);
    // The agents back off up to 30 s between reconnects while the server is away (more on a loaded machine), so
    // this waits past one whole back-off, and says what the agent logged if it still did not catch up.
    for (const name of ['eu-1', 'us-1'])
      await poll(
        () => `${name} caught up after the restart; its log ends:\n${members[name]!.log.slice(-1500)}`,
        async () => (await secretValue(members[name]!, 'shop-db')) === VALUES[3],
        70_000,
      );
    assert.match(members['eu-1']!.log, /stream disconnected; reconnecting/);
    await poll('fresh reports after the restart', async () => {
      const s = (await placement()).status.clusters;
      return s['eu-1']?.revision === (await revisionOf()) && s['us-1']?.revision === (await revisionOf());
    });
  });

  it('unpublishing removes every object the agents created and nothing else', async () => {
    const res = await server.api.call('DELETE', 'sys/cofre/placements/shop-eu');
    assert.equal(res.status, 204, res.text);
    for (const m of Object.values(members)) {
      await poll(`${m.name} cleaned`, async () => !(await exists('secret', m, 'shop-db')));
      await poll(`${m.name} ConfigMap gone`, async () => !(await exists('configmap', m, 'shop-config')));
      assert.ok(await exists('secret', m, 'bystander'));
      await m.apps.readNamespacedDeployment({ name: 'shop', namespace: APP_NS });
      // The agent's own Secrets stay.
      await m.core.readNamespacedSecret({ name: 'cofre-cluster-agent-keys', namespace: AGENT_NS });
    }
  });

  it("a deregistered cluster's agent is refused and says so", async () => {
    const eu2 = members['eu-2']!;
    const before = eu2.log.length;
    const res = await server.api.call('DELETE', 'sys/cofre/clusters/eu-2');
    assert.equal(res.status, 204, res.text);
    await poll('the refusal in the log', async () => /refused by the server.*deregistered/.test(eu2.log.slice(before)));
    assert.notEqual(eu2.agent?.child.exitCode, 0);
  });

  it('an agent stops cleanly on SIGTERM', async () => {
    for (const m of Object.values(members)) {
      assert.equal(await stopAgent(m, 'SIGTERM'), 0, `${m.name} exit code`);
      assert.match(m.log, /cluster agent stopped/);
    }
  });

  it('no secret value or token in any agent log line or placement status', async () => {
    const everything = [...Object.values(members).map((m) => m.log), ...statuses].join('\n');
    assert.ok(everything.length > 0);
    for (const value of [...VALUES, ...Object.values(DUMP_VALUES)])
      assert.ok(!everything.includes(value), 'a secret value leaked');
    for (const value of [...VALUES, ...Object.values(DUMP_VALUES)])
      assert.ok(!everything.includes(Buffer.from(value).toString('base64')), 'a secret value leaked (base64)');
    for (const m of Object.values(members))
      assert.ok(!everything.includes(m.bootstrapToken), 'a bootstrap token leaked');
    assert.doesNotMatch(everything, /hvs\.|"client_token"/);
    for (const m of Object.values(members)) {
      // Every line the agent wrote is a JSON log line (nothing printed raw), and it said what it did.
      for (const line of m.log.split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), line);
      assert.match(m.log, /"msg":"applied"/);
    }
  });
});

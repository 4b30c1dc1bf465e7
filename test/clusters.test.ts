import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inPodNotes } from '../src/kube/cluster-agent/agent.js';
import { AgentKeys } from '../src/kube/cluster-agent/keys.js';
import { parsePayload } from '../src/kube/cluster-agent/payload.js';
import { clustersOf, CLUSTERS_PREFIX } from '../src/clusters/service.js';
import { applyRemoteChanges } from '../src/core/remote-changes.js';
import {
  AgentProtocol,
  enrol,
  loginProof,
  openFetched,
  type DeliveryEvent,
  type SetEntry,
} from '../src/kube/cluster-agent/protocol.js';
import { runCli, startServer, type InProcessServer } from './support.js';

/** A simulated agent: keys of its own, generated as the real one does inside its cluster. */
function newKeys(): Promise<AgentKeys> {
  return AgentKeys.generate();
}

const SECRET_VALUE = 'pw-7f3c1e9a-do-not-leak';
const NEW_VALUE = 'pw-rotated-41b2d8-do-not-leak';

async function waitFor<T>(what: string, check: () => T | undefined, ms = 1000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('multi-cluster: clusters, enrolment, deliveries, placements, bundles, stream', () => {
  let server: InProcessServer;
  const agents: Record<string, { keys: AgentKeys; protocol: AgentProtocol; clusterId: string }> = {};
  const bootstrapTokens: string[] = [];

  async function register(name: string, labels: Record<string, string>): Promise<string> {
    const res = await server.api.call('PUT', `sys/cofre/clusters/${name}`, { body: { labels } });
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.data.bootstrap_token, /^cbt\./);
    bootstrapTokens.push(res.body.data.bootstrap_token);
    return res.body.data.bootstrap_token as string;
  }

  async function enrolAgent(name: string, labels: Record<string, string>): Promise<void> {
    const token = await register(name, labels);
    const keys = await newKeys();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id } = await enrol({ address: server.url }, token, pub, 'test/1');
    agents[name] = {
      keys,
      clusterId: cluster_id,
      protocol: new AgentProtocol({ address: server.url, clusterId: cluster_id, keys }),
    };
  }

  before(async () => {
    server = await startServer();
    const audit = await server.api.call('PUT', 'sys/audit/file', {
      body: { type: 'file', options: { file_path: join(server.dir, 'audit.log') } },
    });
    assert.equal(audit.status, 204, audit.text);
    const kv = await server.api.call('PUT', 'secret/data/app/db', {
      body: { data: { password: SECRET_VALUE, user: 'app' } },
    });
    assert.equal(kv.status, 200, kv.text);
    for (const [name, region] of [
      ['eu-1', 'eu'],
      ['eu-2', 'eu'],
      ['us-1', 'us'],
    ] as const) {
      await enrolAgent(name, { region, 'cofre.dev/tier': 'store' });
    }
    let res = await server.api.call('PUT', 'sys/cofre/deliveries/shop', {
      body: {
        namespace: 'shop',
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
  });
  after(() => server.stop());

  it('a bootstrap token enrols once: a second use and an expired token are refused', async () => {
    const token = await register('once', {});
    const keys = await newKeys();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    // 16 enrolments racing with one token: exactly one wins.
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, () => enrol({ address: server.url }, token, pub, 'x')),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const again = await server.api.call('PUT', 'sys/cofre/agent/enrol', {
      token: '',
      body: { bootstrap_token: token, sealing_key: pub.sealingPublicKey, signing_key: pub.signingPublicKey },
    });
    assert.equal(again.status, 403, again.text);
    // Expired: a TTL of 1 s, used after 1.1 s.
    const short = await server.api.call('PUT', 'sys/cofre/clusters/short', { body: { bootstrap_ttl: '1s' } });
    await new Promise((r) => setTimeout(r, 1100));
    await assert.rejects(enrol({ address: server.url }, short.body.data.bootstrap_token, pub, 'x'), /403/);
    // The read shows state and fingerprints, never a key or token.
    const read = await server.api.call('GET', 'sys/cofre/clusters/once');
    assert.equal(read.body.data.state, 'enrolled');
    assert.match(read.body.data.signing_key_fingerprint, /^[0-9a-f]{64}$/);
    assert.ok(!read.text.includes(pub.signingPublicKey) && !read.text.includes(token));
    const list = await server.api.call('LIST', 'sys/cofre/clusters');
    assert.deepEqual(list.body.data.keys, ['eu-1', 'eu-2', 'once', 'short', 'us-1']);
  });

  it('bad input is a 400 that says what is wrong', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['sys/cofre/clusters/bad', { labels: { 'a b': 'x' } }, /invalid label key "a b"/],
      ['sys/cofre/clusters/bad', { labels: { region: 'no spaces' } }, /invalid value/],
      ['sys/cofre/clusters/Bad_Name', {}, /invalid cluster name/],
      ['sys/cofre/clusters/bad', { bootstrap_ttl: '100000h' }, /bootstrap_ttl/],
      ['sys/cofre/clusters/bad', { bootstrap_ttl: '-5s' }, /bootstrap_ttl|duration/],
      ['sys/cofre/clusters/bad', { extra: 1 }, /unknown fields: extra/],
      ['sys/cofre/agent/enrol', { bootstrap_token: 'cbt.x', sealing_key: 'AAAA', signing_key: 'AAAA' }, /sealing_key/],
      [
        'sys/cofre/deliveries/d',
        { namespace: 'x', items: [{ name: 'a', mode: 'volume', literal: { a: 'b' } }] },
        /mode must be "secret", "configmap", "env" or "file"/,
      ],
      [
        'sys/cofre/deliveries/d',
        { namespace: 'x', items: [{ name: 'a', mode: 'env', literal: { a: 'b' } }] },
        /literal source is for configmap items only/,
      ],
      [
        'sys/cofre/deliveries/d',
        { namespace: 'x', items: [{ name: 'a', mode: 'secret', literal: { a: 'b' } }] },
        /literal source is for configmap/,
      ],
      ['sys/cofre/deliveries/d', { namespace: 'x', items: [{ name: 'a', mode: 'secret' }] }, /exactly one source/],
      ['sys/cofre/deliveries/d', { namespace: 'x', items: [] }, /non-empty list/],
      ['sys/cofre/placements/p', { delivery: 'shop' }, /selector/],
      ['sys/cofre/placements/p', { delivery: 'nope', clusters: ['eu-1'] }, /no delivery "nope"/],
      ['sys/cofre/agent/login', { cluster_id: 'x', timestamp: 'yesterday', nonce: 'n', signature: 's' }, /RFC 3339/],
    ];
    for (const [path, body, message] of cases) {
      const res = await server.api.call('PUT', path, { body });
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assert.match(res.body.errors[0], message);
    }
  });

  it('a KV source that does not exist shows in the placement status, not as a 500', async () => {
    let res = await server.api.call('PUT', 'sys/cofre/deliveries/ghost', {
      body: {
        namespace: 'ghost',
        items: [{ name: 'g', mode: 'secret', kv: { mount: 'secret', path: 'nothing/here' } }],
      },
    });
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.data.source_error, /kv secret "secret\/nothing\/here" not found/);
    res = await server.api.call('PUT', 'sys/cofre/placements/ghost', {
      body: { delivery: 'ghost', clusters: ['us-1'] },
    });
    assert.equal(res.status, 204);
    res = await server.api.call('GET', 'sys/cofre/placements/ghost');
    assert.match(res.body.data.status.delivery_error, /not found/);
    await assert.rejects(agents['us-1']!.protocol.fetchBundle('ghost'), /400[\s\S]*cannot be built/);
    await server.api.call('DELETE', 'sys/cofre/placements/ghost');
  });

  it('a KV key Kubernetes refuses is reported at the write and never published; kv.keys delivers the others', async () => {
    const kv = await server.api.call('POST', 'secret/data/odd/keys', {
      body: { data: { 'has space': 'x-3f9a', fine: 'y-3f9a' } },
    });
    assert.equal(kv.status, 200, kv.text);
    const item = { name: 'odd', mode: 'secret', kv: { mount: 'secret', path: 'odd/keys' } };
    let res = await server.api.call('PUT', 'sys/cofre/deliveries/odd', { body: { namespace: 'odd', items: [item] } });
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.data.source_error, /key "has space", which cannot be a Kubernetes data key/);
    assert.doesNotMatch(res.text, /x-3f9a|y-3f9a/);
    res = await server.api.call('PUT', 'sys/cofre/placements/odd', { body: { delivery: 'odd', clusters: ['us-1'] } });
    assert.equal(res.status, 204);
    await assert.rejects(agents['us-1']!.protocol.fetchBundle('odd'), /400[\s\S]*cannot be built/);
    // Placed nowhere from here on: the tests below expect us-1 to have nothing to remove.
    await server.api.call('DELETE', 'sys/cofre/placements/odd');
    const fixed = { namespace: 'odd', items: [{ ...item, kv: { ...item.kv, keys: ['fine'] } }] };
    res = await server.api.call('PUT', 'sys/cofre/deliveries/odd', { body: fixed });
    assert.equal(res.body.data.source_error, null, res.text);
    res = await server.api.call('PUT', 'sys/cofre/deliveries/odd/preview', { body: fixed });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body.data.objects[0].manifest.data), ['fine']);
    await server.api.call('DELETE', 'sys/cofre/deliveries/odd');
  });

  it('exactly the selected clusters see the delivery and open their bundle; others are refused', async () => {
    for (const name of ['eu-1', 'eu-2']) {
      const { protocol } = agents[name]!;
      const set = await protocol.set();
      assert.deepEqual(set, [{ delivery: 'shop', namespace: 'shop', revision: 1 }]);
      const { payload } = await protocol.fetchAndOpen(set[0]!);
      const secret = payload.objects.find((o) => o.kind === 'Secret')!;
      assert.equal(Buffer.from(secret.data.password!, 'base64').toString(), SECRET_VALUE);
      assert.deepEqual(Object.keys(secret.data), ['password']);
      const config = payload.objects.find((o) => o.kind === 'ConfigMap')!;
      assert.equal(Buffer.from(config.data.LOG_LEVEL!, 'base64').toString(), 'info');
      assert.deepEqual(payload.rollout, [{ kind: 'Deployment', name: 'shop' }]);
    }
    assert.deepEqual(await agents['us-1']!.protocol.set(), []);
    await assert.rejects(agents['us-1']!.protocol.fetchBundle('shop'), /403/);
  });

  it('a bundle fetched by one cluster does not open for another; tampered or older bundles are refused', async () => {
    const a = agents['eu-1']!;
    const b = agents['eu-2']!;
    const fetched = await a.protocol.fetchBundle('shop');
    const expected = { delivery: 'shop', namespace: 'shop', minRevision: fetched.revision };
    await openFetched(a.clusterId, a.keys, expected, fetched);
    await assert.rejects(openFetched(b.clusterId, b.keys, expected, fetched));
    // B's id with A's key (a stolen key and blob): the binding names A, so it still fails.
    await assert.rejects(openFetched(b.clusterId, a.keys, expected, fetched));
    const ct = Buffer.from(fetched.bundle.ciphertext, 'base64url');
    ct[5] = ct[5]! ^ 1;
    const tampered = { ...fetched, bundle: { ...fetched.bundle, ciphertext: ct.toString('base64url') } };
    await assert.rejects(openFetched(a.clusterId, a.keys, expected, tampered));
    // Presented as another revision: the binding differs.
    await assert.rejects(openFetched(a.clusterId, a.keys, expected, { ...fetched, revision: fetched.revision + 1 }));
    // Older than what the agent applied: refused before opening.
    await assert.rejects(
      openFetched(a.clusterId, a.keys, { ...expected, minRevision: fetched.revision + 1 }, fetched),
      /older/,
    );
    // Sealed once per cluster and revision: fetching again returns the same blob.
    assert.deepEqual((await a.protocol.fetchBundle('shop')).bundle, fetched.bundle);
  });

  it('a KV write bumps the revision and the stream tells each selected agent within a second', async () => {
    const seen: Record<string, DeliveryEvent[]> = {};
    const hellos: Record<string, SetEntry[]> = {};
    const streams = ['eu-1', 'eu-2', 'us-1'].map((name) => {
      seen[name] = [];
      return agents[name]!.protocol.stream({
        onHello: (set) => (hellos[name] = set),
        onDelivery: (event) => seen[name]!.push(event),
      });
    });
    try {
      await waitFor('hellos', () => (Object.keys(hellos).length === 3 ? true : undefined), 3000);
      const before = (await server.api.call('GET', 'sys/cofre/deliveries/shop')).body.data.revision as number;
      const started = Date.now();
      await server.api.call('PUT', 'secret/data/app/db', { body: { data: { password: NEW_VALUE, user: 'app' } } });
      for (const name of ['eu-1', 'eu-2']) {
        const event = await waitFor(`${name}'s event`, () => seen[name]!.find((e) => e.revision === before + 1));
        assert.deepEqual(event, { delivery: 'shop', revision: before + 1 });
      }
      assert.ok(Date.now() - started < 1000);
      const { payload, revision } = await agents['eu-1']!.protocol.fetchAndOpen({
        delivery: 'shop',
        namespace: 'shop',
        revision: before + 1,
      });
      assert.equal(revision, before + 1);
      assert.equal(Buffer.from(payload.objects[0]!.data.password!, 'base64').toString(), NEW_VALUE);
      // A write that does not change the delivered value (another key) makes no new revision.
      await server.api.call('PUT', 'secret/data/app/db', { body: { data: { password: NEW_VALUE, user: 'other' } } });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await server.api.call('GET', 'sys/cofre/deliveries/shop')).body.data.revision, before + 1);
      assert.deepEqual(seen['us-1'], []);

      // Relabelling: us-1 joins, eu-2 leaves (revision 0 in its set and stream, as it was handed a bundle).
      await server.api.call('PUT', 'sys/cofre/clusters/us-1', { body: { labels: { region: 'eu' } } });
      await server.api.call('PUT', 'sys/cofre/clusters/eu-2', { body: { labels: { region: 'us' } } });
      await waitFor('us-1 added', () => seen['us-1']!.find((e) => e.revision === before + 1));
      await waitFor('eu-2 removed', () => seen['eu-2']!.find((e) => e.revision === 0));
      assert.deepEqual(await agents['eu-2']!.protocol.set(), [{ delivery: 'shop', namespace: 'shop', revision: 0 }]);
      // eu-2 reports the removal done: it leaves its set.
      await agents['eu-2']!.protocol.report({ agent_version: 'test/1', health: 'ok', deliveries: {} });
      assert.deepEqual(await agents['eu-2']!.protocol.set(), []);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('the stream logs in again before the token expires and reconnects with the new token', async () => {
    const a = agents['eu-1']!;
    // A margin of all but 1.5 s of the 15-minute TTL: the renewal is due 1.5 s after the login.
    const protocol = new AgentProtocol({
      address: server.url,
      clusterId: a.clusterId,
      keys: a.keys,
      reloginMarginMs: 15 * 60_000 - 1500,
    });
    const hellos: SetEntry[][] = [];
    const logs: string[] = [];
    const first = await protocol.login();
    const stream = protocol.stream({
      onHello: (set) => hellos.push(set),
      onDelivery: () => {},
      log: (m) => logs.push(m),
    });
    try {
      await waitFor('the first hello', () => (hellos.length >= 1 ? true : undefined), 3000);
      await waitFor('a second hello after the renewal', () => (hellos.length >= 2 ? true : undefined), 5000);
      assert.ok(
        logs.some((m) => /logging in again before the token expires/.test(m)),
        logs.join('\n'),
      );
      assert.ok(!logs.some((m) => /disconnected/.test(m)), 'a renewal is not a lost connection');
      const second = await protocol.currentToken();
      assert.notEqual(second, first);
      assert.deepEqual(hellos[1], hellos[0], 'the new connection catches up with the same set');
    } finally {
      stream.close();
    }
  });

  it("another node's placement reaches the agents connected here once its write is notified", async () => {
    const core = server.cofre.core;
    const service = clustersOf(core);
    const seen: DeliveryEvent[] = [];
    let hello: SetEntry[] | undefined;
    const res = await server.api.call('PUT', 'sys/cofre/deliveries/extra', {
      body: { namespace: 'extra', items: [{ name: 'extra-config', mode: 'configmap', literal: { A: '1' } }] },
    });
    assert.equal(res.status, 200, res.text);
    // eu-2 carries region=us by now (relabelled above).
    const stream = agents['eu-2']!.protocol.stream({
      onHello: (set) => (hello = set),
      onDelivery: (e) => seen.push(e),
    });
    try {
      await waitFor('hello', () => hello, 3000);
      await new Promise((r) => setTimeout(r, 100)); // the fan-out a connection makes has run
      // What another node's write amounts to here: the record lands in the shared store, not through this node.
      await service.store.putPlacement({
        name: 'extra-us',
        delivery: 'extra',
        selector: { matchLabels: { region: 'us' } },
        clusters: [],
        updatedAt: new Date().toISOString(),
      });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.length, 0, 'nothing is told before the write is notified');
      await applyRemoteChanges(core, [`${CLUSTERS_PREFIX}placements/extra-us`]);
      const event = await waitFor('the placement event', () => seen.find((e) => e.delivery === 'extra'));
      assert.deepEqual(event, { delivery: 'extra', revision: 1 });
      // A relabelling made on another node: the cluster's record is notified.
      const labelled = await server.api.call('PUT', 'sys/cofre/deliveries/extra-label', {
        body: { namespace: 'extra', items: [{ name: 'extra-label', mode: 'configmap', literal: { C: '1' } }] },
      });
      assert.equal(labelled.status, 200, labelled.text);
      await service.store.putPlacement({
        name: 'extra-label',
        delivery: 'extra-label',
        selector: { matchLabels: { stage: 'x' } },
        clusters: [],
        updatedAt: new Date().toISOString(),
      });
      const record = (await service.store.cluster('eu-2'))!;
      await service.store.putCluster({ ...record, labels: { ...record.labels, stage: 'x' } });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.filter((e) => e.delivery === 'extra-label').length, 0);
      await applyRemoteChanges(core, [`${CLUSTERS_PREFIX}clusters/eu-2`]);
      const relabelled = await waitFor('the relabelling', () => seen.find((e) => e.delivery === 'extra-label'));
      assert.deepEqual(relabelled, { delivery: 'extra-label', revision: 1 });
      await service.store.putCluster(record);
      // A missed notification (the keys unknown: every cache is reloaded) also compares the agents with the store.
      const second = await server.api.call('PUT', 'sys/cofre/deliveries/extra2', {
        body: { namespace: 'extra', items: [{ name: 'extra2-config', mode: 'configmap', literal: { B: '1' } }] },
      });
      assert.equal(second.status, 200, second.text);
      await service.store.putPlacement({
        name: 'extra2-us',
        delivery: 'extra2',
        selector: { matchLabels: { region: 'us' } },
        clusters: [],
        updatedAt: new Date().toISOString(),
      });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.filter((e) => e.delivery === 'extra2').length, 0);
      await applyRemoteChanges(core, undefined);
      const missed = await waitFor('the second placement', () => seen.find((e) => e.delivery === 'extra2'));
      assert.deepEqual(missed, { delivery: 'extra2', revision: 1 });
    } finally {
      stream.close();
      const paths = ['placements/extra-us', 'placements/extra2-us', 'placements/extra-label'];
      for (const path of [...paths, 'deliveries/extra', 'deliveries/extra2', 'deliveries/extra-label']) {
        await server.api.call('DELETE', `sys/cofre/${path}`);
      }
    }
  });

  it('reports show in the placement status', async () => {
    await agents['eu-1']!.protocol.report({
      agent_version: 'test/2',
      health: 'ok',
      deliveries: { shop: { revision: 2, applied_at: '2026-01-01T00:00:00Z', pods: { '2': 3, '1': 1 } } },
    });
    const res = await server.api.call('GET', 'sys/cofre/placements/shop-eu');
    const eu1 = res.body.data.status.clusters['eu-1'];
    assert.equal(eu1.revision, 2);
    assert.deepEqual(eu1.pods, { '2': 3, '1': 1 });
    assert.ok(eu1.last_seen);
    const cluster = await server.api.call('GET', 'sys/cofre/clusters/eu-1');
    assert.equal(cluster.body.data.agent_version, 'test/2');
    const bad = await server.api.call('PUT', 'sys/cofre/agent/report', {
      token: await agents['eu-1']!.protocol.currentToken(),
      body: { deliveries: { shop: { revision: -1 } } },
    });
    assert.equal(bad.status, 400);
  });

  it('the agent token reaches its own agent paths only', async () => {
    const token = await agents['us-1']!.protocol.currentToken();
    const probes: [string, string][] = [
      ['GET', 'secret/data/app/db'],
      ['GET', 'sys/cofre/clusters/eu-1'],
      ['LIST', 'sys/cofre/clusters'],
      ['GET', 'sys/cofre/deliveries/shop'],
      ['PUT', 'sys/cofre/placements/mine'],
      ['PUT', 'sys/cofre/clusters/us-1/bootstrap'],
      ['GET', 'sys/policies/acl/default'],
      ['PUT', 'auth/token/create'],
      ['GET', 'auth/token/lookup-self'],
    ];
    for (const [method, path] of probes) {
      const res = await server.api.call(method, path, {
        token,
        ...(method === 'PUT' ? { body: { delivery: 'shop', clusters: ['us-1'] } } : {}),
      });
      assert.equal(res.status, 403, `${method} ${path}: ${res.status} ${res.text}`);
    }
    // A delivery not placed on it.
    await server.api.call('PUT', 'sys/cofre/deliveries/eu-only', {
      body: { namespace: 'x', items: [{ name: 'c', mode: 'configmap', literal: { a: 'b' } }] },
    });
    await server.api.call('PUT', 'sys/cofre/placements/eu-only', { body: { delivery: 'eu-only', clusters: ['eu-1'] } });
    const other = await server.api.call('GET', 'sys/cofre/agent/bundles/eu-only', { token });
    assert.equal(other.status, 403, other.text);
    // The root token is not an agent: agent paths need an agent token.
    assert.equal((await server.api.call('GET', 'sys/cofre/agent/bundles')).status, 403);
    // The policy cannot be changed or assigned.
    assert.equal(
      (
        await server.api.call('PUT', 'sys/policies/acl/cofre-cluster-agent', {
          body: { policy: 'path "*" { capabilities = ["read"] }' },
        })
      ).status,
      400,
    );
    assert.equal(
      (await server.api.call('PUT', 'auth/token/create', { body: { policies: ['cofre-cluster-agent'] } })).status,
      400,
    );
  });

  it('a login is refused with a bad signature, a replayed nonce or a stale timestamp', async () => {
    const a = agents['eu-1']!;
    const login = (body: unknown) => server.api.call('PUT', 'sys/cofre/agent/login', { token: '', body });
    const proof = loginProof(a.clusterId, a.keys);
    const ok = await login(proof);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.auth.policies, ['cofre-cluster-agent']);
    assert.equal(ok.body.auth.lease_duration, 900);
    assert.equal((await login(proof)).status, 403); // replay
    assert.equal((await login(loginProof(a.clusterId, agents['eu-2']!.keys))).status, 403); // another key
    assert.equal((await login(loginProof(a.clusterId, a.keys, new Date(Date.now() - 120_000)))).status, 403);
  });

  it('re-enrolling with new keys revokes the old identity: its token and signature are refused', async () => {
    const old = agents['eu-2']!;
    const oldToken = await old.protocol.currentToken();
    const res = await server.api.call('PUT', 'sys/cofre/clusters/eu-2/bootstrap', { body: {} });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.cluster_id, old.clusterId);
    const keys = await newKeys();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id } = await enrol({ address: server.url }, res.body.data.bootstrap_token, pub, 'test/3');
    assert.equal(cluster_id, old.clusterId);
    assert.equal((await server.api.call('GET', 'sys/cofre/agent/bundles', { token: oldToken })).status, 403);
    const oldLogin = loginProof(old.clusterId, old.keys);
    assert.equal((await server.api.call('PUT', 'sys/cofre/agent/login', { token: '', body: oldLogin })).status, 403);
    const renewed = new AgentProtocol({ address: server.url, clusterId: cluster_id, keys });
    assert.ok(Array.isArray(await renewed.set()));
    agents['eu-2'] = { keys, clusterId: cluster_id, protocol: renewed };
  });

  it("a stream whose agent token is revoked ends at once, not at the cluster's next change or the 30 s ping", async () => {
    const b = agents['eu-2']!;
    const token = await b.protocol.currentToken();
    let connected = false;
    let ended = false;
    const stream = b.protocol.stream(
      {
        onHello: () => undefined,
        onDelivery: () => undefined,
        onConnected: (c) => {
          if (c) connected = true;
          else if (connected) ended = true;
        },
      },
      { minDelayMs: 5000 },
    );
    try {
      await waitFor('the stream connected', () => (connected ? true : undefined), 5_000);
      const res = await server.api.call('POST', 'auth/token/revoke', { body: { token } });
      assert.equal(res.status, 204, res.text);
      await waitFor('the stream ended', () => (ended ? true : undefined), 3_000);
    } finally {
      stream.close();
    }
  });

  it('a deregistered cluster is refused at once: token, signature, racing requests and its stream', async () => {
    const a = agents['eu-1']!;
    const token = await a.protocol.currentToken();
    let ended = false;
    const stream = a.protocol.stream(
      { onHello: () => undefined, onDelivery: () => undefined, onConnected: (c) => (ended ||= !c) },
      { minDelayMs: 5000 },
    );
    try {
      await new Promise((r) => setTimeout(r, 200));
      const racing = Array.from({ length: 20 }, () =>
        server.api.call('GET', 'sys/cofre/agent/bundles/shop', { token }),
      );
      // Logins racing the deregistration: whatever token one of them got must be refused afterwards.
      const logins = Array.from({ length: 10 }, () =>
        server.api.call('PUT', 'sys/cofre/agent/login', { token: '', body: loginProof(a.clusterId, a.keys) }),
      );
      const res = await server.api.call('DELETE', 'sys/cofre/clusters/eu-1');
      assert.equal(res.status, 204);
      for (const r of await Promise.all(racing)) assert.ok([200, 403].includes(r.status), r.text);
      for (const r of await Promise.all(logins)) {
        assert.ok([200, 403].includes(r.status), r.text);
        if (r.status !== 200) continue;
        const late = await server.api.call('GET', 'sys/cofre/agent/bundles', { token: r.body.auth.client_token });
        assert.equal(late.status, 403);
      }
      for (const path of ['sys/cofre/agent/bundles', 'sys/cofre/agent/bundles/shop']) {
        assert.equal((await server.api.call('GET', path, { token })).status, 403);
      }
      assert.equal(
        (
          await server.api.call('PUT', 'sys/cofre/agent/login', {
            token: '',
            body: loginProof(a.clusterId, a.keys),
          })
        ).status,
        403,
      );
      await waitFor('stream end', () => (ended ? true : undefined));
      // Its token is revoked, not only refused.
      assert.equal((await server.api.call('PUT', 'auth/token/lookup', { body: { token } })).status, 403);
    } finally {
      stream.close();
    }
  });

  it("an agent's report racing its cluster's deregistration on another node does not bring the cluster back", async () => {
    await enrolAgent('ghost', { region: 'nowhere' });
    const ghost = agents['ghost']!;
    const service = clustersOf(server.cofre.core);
    const store = service.store;
    const { record, stored } = (await store.clusterRead('ghost'))!;
    // Another node deregisters the cluster between this node's read of the record and its write (the report's own
    // read, after the one that loads what is placed).
    const { cluster, clusterRead } = { cluster: store.cluster.bind(store), clusterRead: store.clusterRead.bind(store) };
    let reads = 0;
    let deregistered = false;
    const deregisterOnce = async <T>(value: T): Promise<T> => {
      if (!deregistered) {
        deregistered = true;
        await store.deleteCluster(record, stored);
      }
      return value;
    };
    store.cluster = async (name) => {
      const value = await cluster(name);
      return name === 'ghost' && ++reads === 2 ? deregisterOnce(value) : value;
    };
    store.clusterRead = async (name) => {
      const value = await clusterRead(name);
      return name === 'ghost' ? deregisterOnce(value) : value;
    };
    try {
      await assert.rejects(service.report(record, 'test/1', 'ok', {}), /permission denied/);
    } finally {
      store.cluster = cluster;
      store.clusterRead = clusterRead;
    }
    assert.ok(deregistered);
    assert.equal(await store.cluster('ghost'), undefined, 'the report wrote the deregistered cluster back');
    assert.equal(await store.clusterById(record.clusterId), undefined);
    const login = await server.api.call('PUT', 'sys/cofre/agent/login', {
      token: '',
      body: loginProof(ghost.clusterId, ghost.keys),
    });
    assert.equal(login.status, 403, login.text);
  });

  it('a registration racing one of the same name on another node keeps the other identity', async () => {
    const store = clustersOf(server.cofre.core).store;
    const cluster = store.cluster.bind(store);
    // Another node registers "twin" between this node's finding no record and its write (the registration's own
    // read, after the one that chose between create and update for the policy check).
    const other = { name: 'twin', clusterId: randomUUID(), labels: {}, createdAt: new Date().toISOString() };
    let registered = false;
    let reads = 0;
    store.cluster = async (name) => {
      const value = await cluster(name);
      if (name === 'twin' && ++reads === 2) {
        registered = true;
        await store.putCluster(other);
      }
      return value;
    };
    let res;
    try {
      res = await server.api.call('PUT', 'sys/cofre/clusters/twin', { body: { labels: { tier: 'x' } } });
    } finally {
      store.cluster = cluster;
    }
    assert.ok(registered);
    // Not a second identity with a bootstrap token: the labels were written on the one registered.
    assert.equal(res.status, 204, res.text);
    const kept = await store.cluster('twin');
    assert.equal(kept?.clusterId, other.clusterId, "the other node's registration was overwritten");
    assert.deepEqual(kept?.labels, { tier: 'x' });
    assert.equal((await server.api.call('DELETE', 'sys/cofre/clusters/twin')).status, 204);
  });

  it('a deregistration racing a new registration of the name on another node leaves no index behind', async () => {
    await register('phoenix', {});
    const store = clustersOf(server.cofre.core).store;
    const clusterRead = store.clusterRead.bind(store);
    // Another node deregisters "phoenix" and registers it anew between this node's read and its delete.
    const reborn = { name: 'phoenix', clusterId: randomUUID(), labels: {}, createdAt: new Date().toISOString() };
    let replaced = false;
    store.clusterRead = async (name) => {
      const value = await clusterRead(name);
      if (name === 'phoenix' && value && !replaced) {
        replaced = true;
        await store.deleteCluster(value.record, value.stored);
        await store.putCluster(reborn, undefined, null);
      }
      return value;
    };
    try {
      assert.equal((await server.api.call('DELETE', 'sys/cofre/clusters/phoenix')).status, 204);
    } finally {
      store.clusterRead = clusterRead;
    }
    assert.ok(replaced);
    // The deregistration deleted what it found when it committed, the new registration with its ID index; before,
    // it deleted the record only and left the new cluster ID's index pointing at no record.
    assert.equal(await store.cluster('phoenix'), undefined);
    const storage = (store as unknown as { storage: { get(key: string): Promise<Uint8Array | undefined> } }).storage;
    assert.equal(await storage.get(`cluster-ids/${reborn.clusterId}`), undefined);
  });

  /** Writes a one-item delivery of that name with that value; answers its revision. */
  const writeDelivery = async (name: string, value: string): Promise<number> => {
    const res = await server.api.call('PUT', `sys/cofre/deliveries/${name}`, {
      body: { namespace: name, items: [{ name: `${name}-config`, mode: 'configmap', literal: { V: value } }] },
    });
    assert.equal(res.status, 200, res.text);
    return res.body.data.revision as number;
  };

  it('a delivery deleted and written again continues its revisions: no agent takes the new one for one it holds', async () => {
    const write = (value: string) => writeDelivery('again', value);
    assert.equal(await write('one'), 1);
    assert.equal(await write('two'), 2);
    assert.equal((await server.api.call('DELETE', 'sys/cofre/deliveries/again')).status, 204);
    // Before, this was revision 1 again: an agent that had applied the old revision 1 or 2 kept the old content.
    assert.equal(await write('three'), 3);
    assert.equal((await server.api.call('DELETE', 'sys/cofre/deliveries/again')).status, 204);
  });

  it("a delivery's deletion racing a write on another node keeps the highest revision for the next one", async () => {
    const write = (value: string) => writeDelivery('raced', value);
    assert.equal(await write('one'), 1);
    const store = clustersOf(server.cofre.core).store;
    const { delivery, deliveryRead } = {
      delivery: store.delivery.bind(store),
      deliveryRead: store.deliveryRead.bind(store),
    };
    // Another node writes revision 5 between the deletion's read and its delete.
    let written = false;
    const otherNodeWrites = async (): Promise<void> => {
      if (written) return;
      written = true;
      const read = await deliveryRead('raced');
      await store.putDelivery({ ...read.record!, revision: 5 }, read.stored);
    };
    store.delivery = async (name) => {
      const record = await delivery(name);
      if (name === 'raced') await otherNodeWrites();
      return record;
    };
    store.deliveryRead = async (name) => {
      const read = await deliveryRead(name);
      if (name === 'raced') await otherNodeWrites();
      return read;
    };
    try {
      assert.equal((await server.api.call('DELETE', 'sys/cofre/deliveries/raced')).status, 204);
    } finally {
      store.delivery = delivery;
      store.deliveryRead = deliveryRead;
    }
    assert.ok(written);
    assert.equal((await server.api.call('GET', 'sys/cofre/deliveries/raced')).status, 404);
    // Before, the deletion wrote the revision it had read (1), and this was 2: a revision agents may hold.
    assert.equal(await write('two'), 6);
    assert.equal((await server.api.call('DELETE', 'sys/cofre/deliveries/raced')).status, 204);
  });

  it('the storage file holds no value in clear', async () => {
    const bytes = readFileSync(join(server.dir, 'cofre.db'));
    for (const value of [SECRET_VALUE, NEW_VALUE, 'LOG_LEVEL', 'shop-db'])
      assert.equal(bytes.includes(value), false, value);
  });

  it('env and file items are Secrets in the bundle, and the status says they were written as Secrets', async () => {
    let res = await server.api.call('PUT', 'sys/cofre/deliveries/inpod', {
      body: {
        namespace: 'inpod',
        items: [
          { name: 'inpod-env', mode: 'env', kv: { mount: 'secret', path: 'app/db', keys: ['password'] } },
          { name: 'inpod-files', mode: 'file', immutable: true, kv: { mount: 'secret', path: 'app/db' } },
          { name: 'inpod-secret', mode: 'secret', kv: { mount: 'secret', path: 'app/db', keys: ['user'] } },
        ],
      },
    });
    assert.equal(res.status, 200, res.text);
    res = await server.api.call('GET', 'sys/cofre/deliveries/inpod');
    assert.deepEqual(
      res.body.data.items.map((i: { mode: string }) => i.mode),
      ['env', 'file', 'secret'],
    );
    res = await server.api.call('PUT', 'sys/cofre/placements/inpod', {
      body: { delivery: 'inpod', clusters: ['us-1'] },
    });
    assert.equal(res.status, 204, res.text);
    const us1 = agents['us-1']!;
    const entry = (await us1.protocol.set()).find((e) => e.delivery === 'inpod')!;
    const { payload } = await us1.protocol.fetchAndOpen(entry);
    assert.deepEqual(
      payload.objects.map((o) => [o.kind, o.name, o.mode, Object.keys(o.data)]),
      [
        ['Secret', 'inpod-env', 'env', ['password']],
        ['Secret', 'inpod-files', 'file', ['password', 'user']],
        ['Secret', 'inpod-secret', undefined, ['user']],
      ],
    );
    assert.equal(payload.objects[1]!.immutable, true);
    // What the agent reports of it (its own function), as the placement status shows it.
    const notes = inPodNotes('inpod', parsePayload(payload));
    assert.deepEqual(notes, [
      'Secret inpod/inpod-env was asked for as environment variables; written as a Secret because in-pod delivery ' +
        'is not available',
      'Secret inpod/inpod-files was asked for as in-memory files; written as a Secret because in-pod delivery is ' +
        'not available',
    ]);
    const report = (deliveries: unknown) =>
      us1.protocol.report({ agent_version: 'test/1', health: 'ok', deliveries } as never);
    await report({ inpod: { revision: entry.revision, applied_at: '2026-01-01T00:00:00Z', pods: {}, notes } });
    res = await server.api.call('GET', 'sys/cofre/placements/inpod');
    const status = res.body.data.status.clusters['us-1'];
    assert.deepEqual(status.notes, notes);
    assert.equal(status.error, null, 'a note is not an error');
    const cli = await runCli(server.url, server.rootToken, 'placement', 'read', 'inpod');
    assert.equal(cli.code, 0, cli.out);
    assert.match(cli.out, /Notes:\n {2}us-1: Secret inpod\/inpod-env was asked for as environment variables;/);
    assert.match(cli.out, /us-1: Secret inpod\/inpod-files was asked for as in-memory files;/);
    // The CLI writes such items from flags too.
    const written = await runCli(
      ...[server.url, server.rootToken, 'delivery', 'write', 'inpod-cli', '-namespace=inpod'],
      ...['-env=e=secret/app/db#password', '-files=f=secret/app/db'],
    );
    assert.equal(written.code, 0, written.out);
    res = await server.api.call('GET', 'sys/cofre/deliveries/inpod-cli');
    assert.deepEqual(res.body.data.items, [
      { name: 'e', mode: 'env', kv: { mount: 'secret', path: 'app/db', keys: ['password'] } },
      { name: 'f', mode: 'file', kv: { mount: 'secret', path: 'app/db' } },
    ]);
    // Notes are bounded and must be strings.
    for (const bad of [{ notes: 'x' }, { notes: [1] }, { notes: Array.from({ length: 65 }, () => 'n') }]) {
      await assert.rejects(report({ inpod: { revision: 1, pods: {}, ...bad } }), /400[\s\S]*notes must be a list/);
    }
    for (const path of ['placements/inpod', 'deliveries/inpod', 'deliveries/inpod-cli']) {
      await server.api.call('DELETE', `sys/cofre/${path}`);
    }
  });

  it('a per-cluster policy reaches its cluster only; registering is a create, relabelling an update', async () => {
    const policy = [
      'path "sys/cofre/clusters/eu-2" { capabilities = ["read", "update"] }',
      'path "sys/cofre/clusters/pc-new" { capabilities = ["update"] }',
      'path "sys/cofre/clusters/pc-fixed" {',
      '  capabilities = ["create", "read", "update"]',
      '  denied_parameters = { "labels" = [] }',
      '}',
    ].join('\n');
    let res = await server.api.call('PUT', 'sys/policies/acl/eu2-admin', { body: { policy } });
    assert.equal(res.status, 204, res.text);
    res = await server.api.call('PUT', 'auth/token/create', { body: { policies: ['eu2-admin'], no_parent: true } });
    assert.equal(res.status, 200, res.text);
    const token = res.body.auth.client_token as string;
    const as = (method: string, path: string, body?: unknown) =>
      server.api.call(method, path, { token, ...(body ? { body } : {}) });
    assert.equal((await as('GET', 'sys/cofre/clusters/eu-2')).status, 200);
    const refused: [string, string, unknown?][] = [
      ['GET', 'sys/cofre/clusters/us-1'],
      ['LIST', 'sys/cofre/clusters'],
      ['DELETE', 'sys/cofre/clusters/eu-2'],
      ['PUT', 'sys/cofre/clusters/eu-2/bootstrap', {}],
      ['GET', 'sys/cofre/deliveries/shop'],
      ['PUT', 'sys/cofre/placements/mine', { delivery: 'shop', clusters: ['eu-2'] }],
      ['GET', 'sys/cofre/agent/bundles'],
      // update without create: a cluster of that name cannot be registered (no bootstrap token is handed out).
      ['PUT', 'sys/cofre/clusters/pc-new', { labels: { region: 'eu' } }],
    ];
    for (const [method, path, body] of refused) {
      const r = await as(method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${r.text}`);
    }
    assert.equal((await server.api.call('GET', 'sys/cofre/clusters/pc-new')).status, 404);
    // Relabelling its own cluster is an update: granted here (what that allows is in the threat model).
    assert.equal((await as('PUT', 'sys/cofre/clusters/eu-2', { labels: { region: 'us' } })).status, 204);
    // Labels can be kept out of an administrator's hands with a parameter constraint.
    res = await as('PUT', 'sys/cofre/clusters/pc-fixed', {});
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.data.bootstrap_token, /^cbt\./);
    assert.equal((await as('PUT', 'sys/cofre/clusters/pc-fixed', { labels: { region: 'us' } })).status, 403);
    assert.deepEqual((await server.api.call('GET', 'sys/cofre/clusters/pc-fixed')).body.data.labels, {});
    assert.equal((await server.api.call('DELETE', 'sys/cofre/clusters/pc-fixed')).status, 204);
  });

  it('registering or relabelling a cluster needs read on the sources of each delivery it would gain', async () => {
    const root = (method: string, path: string, body?: unknown) => server.api.call(method, path, body ? { body } : {});
    const ok = async (method: string, path: string, body?: unknown) => {
      const r = await root(method, path, body);
      assert.ok(r.status === 200 || r.status === 204, `${method} ${path}: ${r.status} ${r.text}`);
    };
    await ok('PUT', 'secret/data/rl/prod-db', { data: { password: 'rl-prod-secret-8c1f' } });
    await ok('PUT', 'secret/data/rl/open', { data: { a: 'rl-open-value' } });
    for (const which of ['prod-db', 'open']) {
      await ok('PUT', `sys/cofre/deliveries/rl-${which}`, {
        namespace: 'rl',
        items: [{ name: `rl-${which}`, mode: 'secret', kv: { mount: 'secret', path: `rl/${which}` } }],
      });
      await ok('PUT', `sys/cofre/placements/rl-${which}`, {
        delivery: `rl-${which}`,
        selector: { matchLabels: { audience: `rl-${which}` } },
      });
    }
    await ok('PUT', 'sys/cofre/placements/rl-named', { delivery: 'rl-prod-db', clusters: ['rl-9'] });
    const policy = [
      'path "sys/cofre/clusters/rl-*" { capabilities = ["create", "read", "update"] }',
      'path "secret/data/rl/open" { capabilities = ["read"] }',
    ].join('\n');
    await ok('PUT', 'sys/policies/acl/rl-admin', { policy });
    const created = await root('PUT', 'auth/token/create', { policies: ['rl-admin'], no_parent: true });
    const token = created.body.auth.client_token as string;
    const as = (method: string, path: string, body?: unknown) =>
      server.api.call(method, path, { token, ...(body ? { body } : {}) });
    const labelsOf = async (cluster: string) => (await root('GET', `sys/cofre/clusters/${cluster}`)).body.data.labels;

    // Into an audience whose sources it reads: granted.
    let res = await as('PUT', 'sys/cofre/clusters/rl-1', { labels: { audience: 'rl-open' } });
    assert.equal(res.status, 200, res.text);
    // Into one it does not: refused, naming the delivery and not its source; the labels stay.
    res = await as('PUT', 'sys/cofre/clusters/rl-1', { labels: { audience: 'rl-prod-db' } });
    assert.equal(res.status, 403, res.text);
    assert.match(res.body.errors[0], /cluster "rl-1" would receive delivery "rl-prod-db"/);
    assert.doesNotMatch(res.text, /rl\/prod-db|rl-prod-secret/);
    assert.deepEqual(await labelsOf('rl-1'), { audience: 'rl-open' });
    // Racing relabels, the refused audience among allowed ones: every one into it is refused, none lands there.
    const raced = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        as('PUT', 'sys/cofre/clusters/rl-1', {
          labels: i % 2 ? { audience: 'rl-prod-db' } : { audience: 'rl-open', n: String(i) },
        }),
      ),
    );
    raced.forEach((r, i) => assert.equal(r.status, i % 2 ? 403 : 204, `relabel ${i}: ${r.text}`));
    assert.equal((await labelsOf('rl-1')).audience, 'rl-open');
    // Registering is the same: by labels, or by a name a placement names. Nothing is stored, no token handed out.
    for (const [cluster, labels] of [
      ['rl-2', { audience: 'rl-prod-db' }],
      ['rl-9', undefined],
    ] as const) {
      res = await as('PUT', `sys/cofre/clusters/${cluster}`, labels ? { labels } : {});
      assert.equal(res.status, 403, `${cluster}: ${res.text}`);
      assert.equal(res.body.bootstrap_token, undefined);
      assert.equal((await root('GET', `sys/cofre/clusters/${cluster}`)).status, 404);
    }
    // What a cluster receives already is not checked again: adding a label, or keeping an audience root gave it.
    assert.equal((await as('PUT', 'sys/cofre/clusters/rl-1', { labels: { audience: 'rl-open', x: 'y' } })).status, 204);
    await ok('PUT', 'sys/cofre/clusters/rl-1', { labels: { audience: 'rl-prod-db' } });
    res = await as('PUT', 'sys/cofre/clusters/rl-1', { labels: { audience: 'rl-prod-db', x: 'y' } });
    assert.equal(res.status, 204, res.text);
    // Root is not limited.
    await ok('PUT', 'sys/cofre/clusters/rl-9', {});

    for (const path of ['placements/rl-named', 'placements/rl-prod-db', 'placements/rl-open', 'clusters/rl-1']) {
      await ok('DELETE', `sys/cofre/${path}`);
    }
    for (const path of ['clusters/rl-9', 'deliveries/rl-prod-db', 'deliveries/rl-open']) {
      await ok('DELETE', `sys/cofre/${path}`);
    }
  });

  it('writing or placing a delivery needs read on each of its KV sources', async () => {
    const policy = [
      'path "sys/cofre/deliveries/*" { capabilities = ["create", "update", "read"] }',
      'path "sys/cofre/placements/*" { capabilities = ["create", "update", "read"] }',
      'path "secret/data/app/open" { capabilities = ["read"] }',
    ].join('\n');
    let res = await server.api.call('PUT', 'sys/policies/acl/pipeline-admin', { body: { policy } });
    assert.equal(res.status, 204, res.text);
    res = await server.api.call('PUT', 'secret/data/app/open', { body: { data: { a: 'open-value' } } });
    assert.equal(res.status, 200, res.text);
    res = await server.api.call('PUT', 'auth/token/create', {
      body: { policies: ['pipeline-admin'], no_parent: true },
    });
    const token = res.body.auth.client_token as string;
    const as = (method: string, path: string, body?: unknown) =>
      server.api.call(method, path, { token, ...(body ? { body } : {}) });
    const kvItem = (mount: string, path: string) => ({
      namespace: 'pa',
      items: [{ name: 'pa', mode: 'secret', kv: { mount, path } }],
    });
    assert.equal((await as('PUT', 'sys/cofre/deliveries/pa-open', kvItem('secret', 'app/open'))).status, 200);
    res = await as('PUT', 'sys/cofre/deliveries/pa-db', kvItem('secret', 'app/db'));
    assert.equal(res.status, 403, res.text);
    assert.match(res.body.errors[0], /delivering "secret\/data\/app\/db" needs read on it/);
    // A mount that does not exist yet: read on both of the KV versions' paths.
    res = await as('PUT', 'sys/cofre/deliveries/pa-later', kvItem('later', 'x'));
    assert.equal(res.status, 403, res.text);
    assert.match(res.body.errors[0], /"later\/data\/x"/);
    // Literal configuration needs nothing more.
    res = await as('PUT', 'sys/cofre/deliveries/pa-config', {
      namespace: 'pa',
      items: [{ name: 'pa', mode: 'configmap', literal: { A: 'b' } }],
    });
    assert.equal(res.status, 200, res.text);
    // Placing a delivery another wrote: the same check, on its sources.
    res = await server.api.call('PUT', 'sys/cofre/deliveries/pa-db', { body: kvItem('secret', 'app/db') });
    assert.equal(res.status, 200, res.text);
    res = await as('PUT', 'sys/cofre/placements/pa-db', { delivery: 'pa-db', clusters: ['us-1'] });
    assert.equal(res.status, 403, res.text);
    assert.equal((await server.api.call('GET', 'sys/cofre/placements/pa-db')).status, 404);
    res = await as('PUT', 'sys/cofre/placements/pa-open', { delivery: 'pa-open', clusters: ['us-1'] });
    assert.equal(res.status, 204, res.text);
    for (const path of ['placements/pa-open', 'deliveries/pa-open', 'deliveries/pa-db', 'deliveries/pa-config']) {
      assert.equal((await server.api.call('DELETE', `sys/cofre/${path}`)).status, 204);
    }
  });

  it('the CLI registers, lists, reads, labels and deregisters clusters', async () => {
    const cli = (...args: string[]) => runCli(server.url, server.rootToken, ...args);
    let res = await cli('cluster', 'register', 'cli-1', '-label', 'region=eu', '-label=tier=store');
    assert.equal(res.code, 0, res.out);
    const token = /bootstrap_token\s+(cbt\.\S+)/.exec(res.out)?.[1];
    assert.ok(token, res.out);
    assert.match(res.out, /shown only this once/);
    res = await cli('cluster', 'register', 'cli-1');
    assert.notEqual(res.code, 0);
    res = await cli('cluster', 'list');
    assert.match(res.out, /cli-1/);
    res = await cli('cluster', 'label', 'cli-1', 'region=us', 'tier=edge');
    assert.equal(res.code, 0, res.out);
    res = await cli('cluster', 'read', 'cli-1', '-format=json');
    assert.equal(res.code, 0, res.out);
    const read = JSON.parse(res.out);
    assert.deepEqual(read.data.labels, { region: 'us', tier: 'edge' });
    assert.equal(read.data.state, 'pending');
    assert.ok(!res.out.includes(token!));
    res = await cli('cluster', 'label', 'cli-1', 'no-equals');
    assert.notEqual(res.code, 0);
    res = await cli('cluster', 'deregister', 'cli-1');
    assert.equal(res.code, 0, res.out);
    res = await cli('cluster', 'read', 'cli-1');
    assert.notEqual(res.code, 0);
    // Its bootstrap token went with it.
    const keys = await newKeys();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    await assert.rejects(enrol({ address: server.url }, token!, pub, 'x'), /403/);
  });

  it('the CLI writes, reads, lists and deletes deliveries and placements', async () => {
    const cli = (...args: string[]) => runCli(server.url, server.rootToken, ...args);
    // From flags: the KV mount is found as `cofre kv` finds it.
    let res = await cli(
      ...['delivery', 'write', 'cli-shop', '-namespace=cli-shop', '-secret=cli-db=secret/app/db#password'],
      ...['-configmap=cli-config=LOG_LEVEL=info', '-configmap=cli-config=MODE=store', '-rollout=deployment/shop'],
    );
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /Success! Wrote delivery: cli-shop \(revision 1\)/);
    res = await cli('delivery', 'read', 'cli-shop', '-format=json');
    assert.equal(res.code, 0, res.out);
    assert.deepEqual(JSON.parse(res.out).data.items, [
      { name: 'cli-db', mode: 'secret', kv: { mount: 'secret', path: 'app/db', keys: ['password'] } },
      { name: 'cli-config', mode: 'configmap', literal: { LOG_LEVEL: 'info', MODE: 'store' } },
    ]);
    res = await cli('delivery', 'read', 'cli-shop');
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /rollout\s+Deployment\/shop/);
    assert.match(res.out, /cli-db\s+secret\s+n\/a\s+n\/a\s+kv secret\/app\/db \(password\)/);
    assert.ok(!res.out.includes(NEW_VALUE) && !res.out.includes(SECRET_VALUE));

    // From a YAML file, with a flag that adds to it: the same definition is no new revision.
    const yamlFile = join(server.dir, 'cli-shop.yaml');
    writeFileSync(
      yamlFile,
      [
        'namespace: cli-shop',
        'items:',
        '  - {name: cli-db, mode: secret, kv: {mount: secret, path: app/db, keys: [password]}}',
        '  - name: cli-config',
        '    mode: configmap',
        '    literal: {LOG_LEVEL: info, MODE: store}',
      ].join('\n'),
    );
    res = await cli('delivery', 'write', 'cli-shop', yamlFile, '-rollout=Deployment/shop');
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /\(revision 1\)/);
    // From JSON in a file, a changed definition: the next revision.
    const jsonFile = join(server.dir, 'cli-shop.json');
    writeFileSync(
      jsonFile,
      JSON.stringify({
        namespace: 'cli-shop',
        items: [{ name: 'cli-config', mode: 'configmap', literal: { A: 'b' } }],
      }),
    );
    res = await cli('delivery', 'write', 'cli-shop', `@${jsonFile}`, '-format=json');
    assert.equal(res.code, 0, res.out);
    assert.equal(JSON.parse(res.out).data.revision, 2);

    // The server's 400 is shown with its message; bad flags and files are usage errors.
    res = await cli('delivery', 'write', 'cli-bad', '-namespace=cli-shop', '-configmap=Bad_Name=a=b');
    assert.equal(res.code, 1, res.out);
    assert.match(res.out, /Code: 400[\s\S]*items\[0\]\.name must be a Kubernetes object name/);
    res = await cli('delivery', 'write', 'cli-bad', '-namespace=x', '-secret=db=nomount/app/db');
    assert.equal(res.code, 2, res.out);
    assert.match(res.out, /no KV mount holds "nomount\/app\/db"/);
    res = await cli('delivery', 'write', 'cli-bad', '-rollout=shop');
    assert.equal(res.code, 2, res.out);
    assert.match(res.out, /--rollout expects KIND\/NAME/);
    res = await cli('delivery', 'write', 'cli-bad');
    assert.equal(res.code, 2, res.out);
    writeFileSync(join(server.dir, 'bad.yaml'), 'items: [unclosed');
    res = await cli('delivery', 'write', 'cli-bad', join(server.dir, 'bad.yaml'));
    assert.equal(res.code, 2, res.out);
    assert.match(res.out, /Failed to parse .*bad\.yaml as JSON or YAML/);
    res = await cli('delivery', 'write', 'cli-bad', join(server.dir, 'missing.json'));
    assert.equal(res.code, 1, res.out);
    assert.match(res.out, /Error reading file/);
    res = await cli('delivery', 'list');
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /cli-shop/);
    assert.doesNotMatch(res.out, /cli-bad/);

    // Placements: flags, then a file; a placement of a delivery that does not exist is the server's 400.
    // (By now eu-2 carries region=us and us-1 region=eu, relabelled above.)
    res = await cli('placement', 'write', 'cli-us', '-delivery=cli-shop', '-selector=region=us', '-cluster=us-1');
    assert.equal(res.code, 0, res.out);
    res = await cli('placement', 'read', 'cli-us', '-format=json');
    assert.equal(res.code, 0, res.out);
    const placed = JSON.parse(res.out).data;
    assert.deepEqual(placed.selector, { matchLabels: { region: 'us' } });
    assert.deepEqual(placed.clusters, ['us-1']);
    assert.deepEqual(Object.keys(placed.status.clusters).sort(), ['eu-2', 'us-1']);
    res = await cli('placement', 'write', 'cli-bad', '-delivery=nope', '-cluster=us-1');
    assert.equal(res.code, 1, res.out);
    assert.match(res.out, /Code: 400[\s\S]*no delivery "nope"/);
    res = await cli('placement', 'write', 'cli-bad', '-cluster=us-1');
    assert.equal(res.code, 2, res.out);
    const placementFile = join(server.dir, 'cli-us.yaml');
    writeFileSync(placementFile, 'delivery: cli-shop\nclusters: [us-1]\n');
    res = await cli('placement', 'write', 'cli-us', placementFile);
    assert.equal(res.code, 0, res.out);

    // us-1's agent applies and reports: the table shows revision, time, pods per revision and the error.
    await agents['us-1']!.protocol.report({
      agent_version: 'test/1',
      health: 'degraded',
      deliveries: {
        'cli-shop': {
          revision: 2,
          applied_at: '2026-01-02T03:04:05Z',
          error: 'delivery cli-shop: Secret cli-shop/x already exists',
          pods: { '1': 1, '2': 3 },
        },
      },
    });
    res = await cli('placement', 'read', 'cli-us');
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /delivery\s+cli-shop/);
    assert.match(res.out, /Cluster\s+State\s+Revision\s+Desired\s+Applied At\s+Pods\s+Error/);
    assert.match(
      res.out,
      /us-1\s+enrolled\s+2\s+2\s+2026-01-02T03:04:05Z\s+rev 2: 3, rev 1: 1\s+delivery cli-shop: Secret cli-shop\/x/,
    );
    res = await cli('placement', 'list', '-format=json');
    assert.equal(res.code, 0, res.out);
    assert.ok(JSON.parse(res.out).includes('cli-us'));
    res = await cli('placement', 'delete', 'cli-us');
    assert.equal(res.code, 0, res.out);
    res = await cli('placement', 'read', 'cli-us');
    assert.equal(res.code, 2, res.out);
    assert.match(res.out, /No placement named: cli-us/);
    res = await cli('delivery', 'delete', 'cli-shop');
    assert.equal(res.code, 0, res.out);
    res = await cli('delivery', 'read', 'cli-shop');
    assert.equal(res.code, 2, res.out);
  });
});

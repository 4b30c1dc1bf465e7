// A dynamic database role as a delivery source, against a real PostgreSQL server (scripts/test-databases.ts) and
// simulated agents that speak the real protocol: one credential per cluster, renewed, replaced for one cluster
// only, revoked when unplaced, deleted or deregistered, and never a password in status, reports, audit or storage.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import { clustersOf } from '../src/clusters/service.js';
import { AgentKeys } from '../src/kube/cluster-agent/keys.js';
import { AgentProtocol, enrol, type DeliveryEvent, type SetEntry } from '../src/kube/cluster-agent/protocol.js';
import { postgres as flavor } from './database-flavors.js';
import { apiClient, startServer, writeOk, type Api, type InProcessServer } from './support.js';

const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'admin-pw-2b9d41-do-not-leak';

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Agent {
  name: string;
  clusterId: string;
  protocol: AgentProtocol;
}

interface Credential {
  revision: number;
  username: string;
  password: string;
}

describe('multi-cluster: a database role as a delivery source, one credential per cluster', () => {
  let db: TestDatabase;
  let server: InProcessServer;
  const agents: Record<string, Agent> = {};
  /** Every password an agent opened: none may show anywhere but in that agent's bundle. */
  const passwords = new Set<string>([ADMIN_PASSWORD]);

  const api = () => server.api;
  const roleExists = (name: string) => flavor.userExists(db, name);
  const canLogIn = (c: Credential) =>
    flavor.runAs(db, c.username, c.password, flavor.allowedSelect).then(
      () => true,
      () => false,
    );

  /** What an agent's Secret would hold: its bundle of the delivery, opened with its own keys. */
  async function open(agent: Agent, delivery: string, item: string, minRevision = 1): Promise<Credential> {
    const { payload, revision } = await agent.protocol.fetchAndOpen({
      delivery,
      namespace: 'app',
      revision: minRevision,
    });
    const secret = payload.objects.find((o) => o.kind === 'Secret' && o.name === item);
    assert.ok(secret, `no Secret ${item} in the bundle`);
    const field = (k: string) => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
    const credential = { revision, username: field('username'), password: field('password') };
    passwords.add(credential.password);
    return credential;
  }

  async function enrolAgent(name: string, labels: Record<string, string>): Promise<void> {
    const res = await writeOk(api(), `sys/cofre/clusters/${name}`, { labels });
    const keys = await AgentKeys.generate();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id } = await enrol({ address: server.url }, res.body.data.bootstrap_token, pub, 'test/1');
    agents[name] = {
      name,
      clusterId: cluster_id,
      protocol: new AgentProtocol({ address: server.url, clusterId: cluster_id, keys }),
    };
  }

  const held = (cluster: string, delivery: string) => clustersOf(server.cofre.core).store.credential(cluster, delivery);

  before(async () => {
    db = await startPostgres();
    for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    server = await startServer();
    await writeOk(api(), 'sys/audit/file', { type: 'file', options: { file_path: join(server.dir, 'audit.log') } });
    await writeOk(api(), 'sys/mounts/database', { type: 'database' });
    await writeOk(api(), 'database/config/main', {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    // Renewed every 2/3 of 4 s (a shorter TTL leaves a loaded test machine too little margin), for an hour at most.
    await writeOk(api(), 'database/roles/app', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '4s',
      max_ttl: '1h',
    });
    // Replaced two thirds into its 12 s.
    await writeOk(api(), 'database/roles/short', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '4s',
      max_ttl: '12s',
    });
    await enrolAgent('store-1', { region: 'eu' });
    await enrolAgent('store-2', { region: 'eu' });
    await enrolAgent('hq', { region: 'us' });
  });
  after(async () => {
    await server?.stop();
    await db?.stop();
  });

  it('bad input is a 400 that says what is wrong; a missing role is a source error', async () => {
    const item = (over: Record<string, unknown>) => ({ namespace: 'app', items: [{ name: 'x', ...over }] });
    const cases: [unknown, RegExp][] = [
      [item({ mode: 'configmap', database: { mount: 'database', role: 'app' } }), /database source is for secret/],
      [item({ mode: 'secret', database: { mount: 'database' } }), /database must be \{mount, role, keys\?\}/],
      [item({ mode: 'secret', database: { mount: 'database', role: 'app', keys: ['host'] } }), /"host" is not a/],
      [item({ mode: 'secret', database: { mount: 'database', role: 'app', ttl: 1 } }), /unknown fields.*ttl/],
      [
        item({ mode: 'secret', database: { mount: 'database', role: 'app' }, kv: { mount: 's', path: 'p' } }),
        /exactly one source/,
      ],
      [{ ...item({ mode: 'secret', database: { mount: 'database', role: 'app' } }), grace_period: '9999h' }, /grace/],
    ];
    for (const [body, message] of cases) {
      const res = await api().call('PUT', 'sys/cofre/deliveries/bad', { body });
      assert.equal(res.status, 400, res.text);
      assert.match(res.body.errors[0], message);
    }
    const missing = await writeOk(
      api(),
      'sys/cofre/deliveries/bad',
      item({ mode: 'secret', database: { mount: 'database', role: 'nope' } }),
    );
    assert.match(missing.body.data.source_error, /database role "database\/nope" not found/);
    // The role created later: the service follows the write, and the delivery can be built.
    await writeOk(api(), 'database/roles/nope', { db_name: 'main', creation_statements: flavor.creation });
    await until('the source error cleared', async () => {
      const read = await api().call('GET', 'sys/cofre/deliveries/bad');
      return read.body.data.source_error === null ? true : undefined;
    });
    assert.equal((await api().call('DELETE', 'database/roles/nope')).status, 204);
    const notDb = await writeOk(
      api(),
      'sys/cofre/deliveries/bad',
      item({ mode: 'secret', database: { mount: 'secret', role: 'app' } }),
    );
    assert.match(notDb.body.data.source_error, /no database mount at "secret\/"/);
    assert.equal((await api().call('DELETE', 'sys/cofre/deliveries/bad')).status, 204);
  });

  const first: Record<string, Credential> = {};

  it('each placed cluster gets a working credential of its own; an unplaced one gets none', async () => {
    await writeOk(api(), 'sys/cofre/deliveries/app', {
      namespace: 'app',
      items: [
        { name: 'app-db', mode: 'secret', database: { mount: 'database', role: 'app' } },
        { name: 'app-db-password', mode: 'secret', database: { mount: 'database', role: 'app', keys: ['password'] } },
      ],
      rollout: [{ kind: 'Deployment', name: 'app' }],
    });
    await writeOk(api(), 'sys/cofre/placements/app-eu', {
      delivery: 'app',
      selector: { matchLabels: { region: 'eu' } },
    });
    const before = await flavor.dynamicUsers(db);
    for (const name of ['store-1', 'store-2']) {
      const set = await agents[name]!.protocol.set();
      assert.deepEqual(set, [{ delivery: 'app', namespace: 'app', revision: 1 }]);
      first[name] = await open(agents[name]!, 'app', 'app-db');
      assert.equal(first[name].revision, 1);
      assert.ok(await canLogIn(first[name]), `${name} logs in with its credential`);
      // A `keys` subset: only the password, of a credential of its own.
      const { payload } = await agents[name]!.protocol.fetchAndOpen(set[0]!);
      const only = payload.objects.find((o) => o.name === 'app-db-password')!;
      assert.deepEqual(Object.keys(only.data), ['password']);
      passwords.add(Buffer.from(only.data.password!, 'base64').toString('utf8'));
    }
    const [a, b] = [first['store-1']!, first['store-2']!];
    assert.notEqual(a.username, b.username);
    assert.notEqual(a.password, b.password);
    // Another cluster's password does not open this cluster's user.
    assert.equal(await canLogIn({ ...a, password: b.password }), false);
    // Two items, two clusters: four users, and fetching again issues none (the bundle is sealed once).
    await agents['store-1']!.protocol.fetchBundle('app');
    assert.equal((await flavor.dynamicUsers(db)).length - before.length, 4);
    assert.deepEqual(await agents.hq!.protocol.set(), []);
    await assert.rejects(agents.hq!.protocol.fetchBundle('app'), /403/);
    assert.equal(await held('hq', 'app'), undefined);
  });

  it('the pipeline renews each lease, so the credential outlives its TTL at the same revision', async () => {
    const lease = (await held('store-1', 'app'))!.current.find((c) => c.item === 'app-db')!;
    await sleep(5000); // 4 s TTL: renewed at about 2.7 s, 5.3 s, …
    for (const name of ['store-1', 'store-2']) {
      assert.ok(await canLogIn(first[name]!), `${name}'s credential still works after its TTL`);
      assert.ok(await roleExists(first[name]!.username));
      assert.deepEqual(await agents[name]!.protocol.set(), [{ delivery: 'app', namespace: 'app', revision: 1 }]);
    }
    const lookup = await writeOk(api(), 'sys/leases/lookup', { lease_id: lease.leaseId });
    assert.ok(lookup.body.data.last_renewal, 'the lease was renewed');
    assert.ok(Date.parse(lookup.body.data.expire_time) > lease.issueTime + 4000);
  });

  it('a short max TTL replaces one cluster credential as its own new revision; the old one goes after its report', async () => {
    const seen: Record<string, DeliveryEvent[]> = { 'store-1': [], 'store-2': [] };
    const hellos: Record<string, SetEntry[]> = {};
    const streams = ['store-1', 'store-2'].map((name) =>
      agents[name]!.protocol.stream({
        onHello: (set) => (hellos[name] = set),
        onDelivery: (event) => seen[name]!.push(event),
      }),
    );
    try {
      await until('hellos', () => Object.keys(hellos).length === 2);
      await writeOk(api(), 'sys/cofre/deliveries/short', {
        namespace: 'app',
        items: [{ name: 'short-db', mode: 'secret', database: { mount: 'database', role: 'short' } }],
        grace_period: '2s',
      });
      await writeOk(api(), 'sys/cofre/placements/short', { delivery: 'short', clusters: ['store-1'] });
      const one = await open(agents['store-1']!, 'short', 'short-db');
      // The second cluster gets its credential 2.5 s later: its replacement is due 2.5 s after the first's.
      await sleep(2500);
      await writeOk(api(), 'sys/cofre/placements/short', { delivery: 'short', clusters: ['store-1', 'store-2'] });
      const two = await open(agents['store-2']!, 'short', 'short-db');
      assert.equal(two.revision, 1);
      const oldLease = (await held('store-1', 'short'))!.current[0]!;

      // About 8 s after its issue, store-1's credential is replaced: revision 2 for store-1, nothing for store-2.
      const event = await until(
        'store-1 hears of revision 2',
        () => seen['store-1']!.find((e) => e.delivery === 'short' && e.revision === 2),
        10_000,
      );
      assert.deepEqual(event, { delivery: 'short', revision: 2 });
      assert.deepEqual(
        seen['store-2']!.filter((e) => e.delivery === 'short' && e.revision > 1),
        [],
        'the other cluster is not rolled',
      );
      const set2 = await agents['store-2']!.protocol.set();
      assert.equal(set2.find((e) => e.delivery === 'short')?.revision, 1);
      assert.equal((await held('store-2', 'short'))!.retired.length, 0);
      const renewed = await open(agents['store-1']!, 'short', 'short-db', 2);
      assert.equal(renewed.revision, 2);
      assert.notEqual(renewed.username, one.username);
      assert.ok(await canLogIn(renewed));
      // The placement status: store-1 wants revision 2, store-2 still 1.
      const status = await api().call('GET', 'sys/cofre/placements/short');
      assert.equal(status.body.data.status.clusters['store-1'].desired_revision, 2);
      assert.equal(status.body.data.status.clusters['store-2'].desired_revision, 1);
      const credentials = status.body.data.status.clusters['store-1'].credentials;
      assert.deepEqual(credentials.replaced_leases, [oldLease.leaseId]);
      assert.equal(credentials.leases.length, 1);
      assert.notEqual(credentials.leases[0], oldLease.leaseId);

      // The old user stays while the agent has not reported revision 2 (pods may still use it)…
      assert.ok(await roleExists(one.username));
      await sleep(500);
      assert.ok(await roleExists(one.username), 'not dropped before the report');
      assert.ok(await canLogIn(one));
      // …and goes once it has, well before its own max TTL.
      await agents['store-1']!.protocol.report({
        agent_version: 'test/1',
        health: 'ok',
        deliveries: {
          short: { revision: 2, applied_at: new Date().toISOString(), pods: { '2': 1 } },
          app: { revision: 1, applied_at: new Date().toISOString(), pods: { '1': 1 } },
        },
      });
      await until('the old user dropped', async () => !(await roleExists(one.username)), 1500);
      assert.ok(Date.now() < oldLease.maxExpireTime, 'dropped on the report, not at its max TTL');
      assert.ok(await canLogIn(renewed), 'the new credential still works');
      assert.equal((await held('store-1', 'short'))!.retired.length, 0);

      // store-2's turn, 2.5 s later: its agent never reports, so its old user goes when the 2 s of grace end.
      await until(
        'store-2 hears of revision 2',
        () => seen['store-2']!.find((e) => e.delivery === 'short' && e.revision === 2),
        5000,
      );
      const oldTwo = (await held('store-2', 'short'))!.retired[0]!;
      const replacedAt = Date.now();
      const twoRenewed = await open(agents['store-2']!, 'short', 'short-db', 2);
      assert.ok(await roleExists(two.username), 'kept during the grace period');
      await until('the grace period ends', async () => !(await roleExists(two.username)), 4000);
      assert.ok(Date.now() - replacedAt > 1000, 'not dropped before the grace period ended');
      assert.ok(Date.now() < oldTwo.maxExpireTime, 'dropped at the end of the grace period, not at its max TTL');

      // Deleting the delivery drops every cluster's users of it at once.
      const users = [renewed.username, twoRenewed.username];
      assert.equal((await api().call('DELETE', 'sys/cofre/deliveries/short')).status, 204);
      await until('the delivery users dropped', async () => {
        for (const u of users) if (await roleExists(u)) return undefined;
        return true;
      });
      await until('the records let go', async () => {
        const left = [await held('store-1', 'short'), await held('store-2', 'short')];
        return left.every((r) => r === undefined) ? true : undefined;
      });
      await api().call('DELETE', 'sys/cofre/placements/short');
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('unplacing a cluster drops its users alone; deregistering one drops its users', async () => {
    const leaseIds = (await held('store-2', 'app'))!.current.map((c) => c.leaseId);
    assert.equal(leaseIds.length, 2);
    const store2Users = (await flavor.dynamicUsers(db)).length;
    // Relabelled away from the placement: store-2's users go, store-1's stay.
    await writeOk(api(), 'sys/cofre/clusters/store-2', { labels: { region: 'us' } });
    await until('store-2 user dropped', async () => !(await roleExists(first['store-2']!.username)));
    // Both of its users (two items), and only those.
    await until('both store-2 users dropped', async () => (await flavor.dynamicUsers(db)).length === store2Users - 2);
    assert.ok(await canLogIn(first['store-1']!), "store-1's credential is untouched");
    await until('the record let go', async () => (await held('store-2', 'app')) === undefined);
    for (const id of leaseIds) {
      assert.equal((await api().call('PUT', 'sys/leases/lookup', { body: { lease_id: id } })).status, 400);
    }
    // Placed again: a new credential, under a revision higher than any it held (never the revoked one again).
    await writeOk(api(), 'sys/cofre/clusters/store-2', { labels: { region: 'eu' } });
    const [entry] = await agents['store-2']!.protocol.set();
    assert.equal(entry?.revision, 2);
    const again = await open(agents['store-2']!, 'app', 'app-db', 2);
    assert.notEqual(again.username, first['store-2']!.username);
    assert.ok(await canLogIn(again));

    // Deregistered: its users go at once.
    assert.equal((await api().call('DELETE', 'sys/cofre/clusters/store-2')).status, 204);
    await until('the deregistered cluster user dropped', async () => !(await roleExists(again.username)));
    assert.ok(await canLogIn(first['store-1']!));
    await until('the record let go', async () => (await held('store-2', 'app')) === undefined);
  });

  it('re-enrolling with new keys replaces the cluster credentials; the old ones go after its report', async () => {
    const old = first['store-1']!;
    const res = await writeOk(api(), 'sys/cofre/clusters/store-1/bootstrap', {});
    const keys = await AgentKeys.generate();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id } = await enrol({ address: server.url }, res.body.data.bootstrap_token, pub, 'test/2');
    agents['store-1'] = {
      name: 'store-1',
      clusterId: cluster_id,
      protocol: new AgentProtocol({ address: server.url, clusterId: cluster_id, keys }),
    };
    // The new keys never open a bundle with a credential the old keys could open.
    const renewed = await open(agents['store-1'], 'app', 'app-db');
    assert.equal(renewed.revision, 2);
    assert.notEqual(renewed.username, old.username);
    assert.ok(await canLogIn(renewed));
    assert.ok(await roleExists(old.username), 'the old user waits for the report');
    await agents['store-1'].protocol.report({
      agent_version: 'test/2',
      health: 'ok',
      deliveries: { app: { revision: 2, applied_at: new Date().toISOString(), pods: { '2': 1 } } },
    });
    await until('the old user dropped', async () => !(await roleExists(old.username)));
    await until('both replaced leases let go', async () => (await held('store-1', 'app'))!.retired.length === 0);
    first['store-1'] = renewed;
  });

  it('a lease revoked by hand is replaced at its next renewal, as that cluster next revision', async () => {
    const lease = (await held('store-1', 'app'))!.current.find((c) => c.item === 'app-db')!;
    const res = await api().call('PUT', 'sys/leases/revoke', { body: { lease_id: lease.leaseId } });
    assert.equal(res.status, 204, res.text);
    assert.equal(await canLogIn(first['store-1']!), false, 'revoked: the user is gone');
    // The renewal is refused about two thirds into the 4 s TTL: a new credential, revision 3 for store-1.
    await until(
      'the replacement',
      async () => ((await agents['store-1']!.protocol.set())[0]?.revision === 3 ? true : undefined),
      6000,
    );
    const replaced = await open(agents['store-1']!, 'app', 'app-db', 3);
    assert.notEqual(replaced.username, first['store-1']!.username);
    assert.ok(await canLogIn(replaced));
  });

  it('an item dropped from the delivery lets its credential go after the report of the revision without it', async () => {
    const record = (await held('store-1', 'app'))!;
    const dropped = record.current.find((c) => c.item === 'app-db-password')!;
    const [before] = await agents['store-1']!.protocol.set();
    await writeOk(api(), 'sys/cofre/deliveries/app', {
      namespace: 'app',
      items: [{ name: 'app-db', mode: 'secret', database: { mount: 'database', role: 'app' } }],
      rollout: [{ kind: 'Deployment', name: 'app' }],
    });
    const [after] = await agents['store-1']!.protocol.set();
    assert.equal(after!.revision, before!.revision + 1);
    await until('the item credential set aside', async () =>
      (await held('store-1', 'app'))!.retired.some((r) => r.leaseId === dropped.leaseId),
    );
    const { payload } = await agents['store-1']!.protocol.fetchAndOpen(after!);
    assert.deepEqual(
      payload.objects.map((o) => o.name),
      ['app-db'],
    );
    const lookup = () => api().call('PUT', 'sys/leases/lookup', { body: { lease_id: dropped.leaseId } });
    assert.equal((await lookup()).status, 200, 'kept until the report');
    await agents['store-1']!.protocol.report({
      agent_version: 'test/2',
      health: 'ok',
      deliveries: { app: { revision: after!.revision, applied_at: new Date().toISOString(), pods: {} } },
    });
    await until('the lease revoked', async () => ((await lookup()).status === 400 ? true : undefined));
    assert.equal((await held('store-1', 'app'))!.current.length, 1);
  });

  it('a refused renewal whose re-issue fails shows in the status and is retried later, not in a loop', async () => {
    await writeOk(api(), 'database/roles/flaky', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '3s',
      max_ttl: '1h',
    });
    await writeOk(api(), 'sys/cofre/deliveries/flaky', {
      namespace: 'app',
      items: [{ name: 'flaky-db', mode: 'secret', database: { mount: 'database', role: 'flaky' } }],
    });
    await writeOk(api(), 'sys/cofre/placements/flaky', { delivery: 'flaky', clusters: ['store-1'] });
    await open(agents['store-1']!, 'flaky', 'flaky-db');
    // The role goes: the renewal (about 2 s in) is refused, and so is the re-issue.
    assert.equal((await api().call('DELETE', 'database/roles/flaky')).status, 204);
    const error = await until(
      'the error in the status',
      async () => {
        const res = await api().call('GET', 'sys/cofre/placements/flaky');
        return (res.body.data.status.clusters['store-1'].credentials.error as string | null) ?? undefined;
      },
      5000,
    );
    assert.match(error, /re-issuing the credential of item "flaky-db" failed: unknown role: flaky/);
    await sleep(1500);
    const attempts = readFileSync(join(server.dir, 'audit.log'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"type":"response"') && line.includes('database/creds/flaky')).length;
    assert.equal(attempts, 2, 'the issue and one failed re-issue, then nothing until the retry');
    assert.equal((await api().call('DELETE', 'sys/cofre/deliveries/flaky')).status, 204);
    await api().call('DELETE', 'sys/cofre/placements/flaky');
    await until('the record let go', async () => (await held('store-1', 'flaky')) === undefined);
  });

  it('a fetch issuing while its cluster is deregistered leaves no credential behind', async () => {
    // Issuing takes a moment (the role's statements sleep): the deregistration lands after the fetch checked the
    // placement and before the credential it issues is recorded.
    await writeOk(api(), 'database/roles/slow', {
      db_name: 'main',
      creation_statements: ['SELECT pg_sleep(0.8)', ...flavor.creation],
      default_ttl: '1h',
      max_ttl: '1h',
    });
    await enrolAgent('racer', { race: 'yes' });
    await writeOk(api(), 'sys/cofre/deliveries/race', {
      namespace: 'app',
      items: [{ name: 'race-db', mode: 'secret', database: { mount: 'database', role: 'slow' } }],
    });
    await writeOk(api(), 'sys/cofre/placements/race', { delivery: 'race', selector: { matchLabels: { race: 'yes' } } });
    const users = (await flavor.dynamicUsers(db)).length;
    const fetching = open(agents['racer']!, 'race', 'race-db').then(
      () => 'opened',
      (err: Error) => err.message,
    );
    await sleep(300);
    assert.equal((await api().call('DELETE', 'sys/cofre/clusters/racer')).status, 204);
    const outcome = await fetching;
    await until('no lease of the role left', async () =>
      (await api().call('LIST', 'sys/leases/lookup/database/creds/slow/')).status === 404 ? true : undefined,
    );
    assert.equal(await held('racer', 'race'), undefined, `the record stayed (the fetch: ${outcome})`);
    await until('no user of the role left', async () => (await flavor.dynamicUsers(db)).length === users);
    for (const path of ['sys/cofre/placements/race', 'sys/cofre/deliveries/race', 'database/roles/slow']) {
      assert.equal((await api().call('DELETE', path)).status, 204, path);
    }
  });

  it("placing, writing or relabelling into a database source needs read on the role's credentials", async () => {
    const call = (token: string, method: string, path: string, body?: unknown) =>
      api().call(method, path, { token, ...(body ? { body } : {}) });
    // A delivery of the "app" role's credentials, placed (by root) on clusters labelled tier=gold: none yet.
    await writeOk(api(), 'sys/cofre/deliveries/gold-db', {
      namespace: 'gold',
      items: [{ name: 'gold-db', mode: 'secret', database: { mount: 'database', role: 'app' } }],
    });
    await writeOk(api(), 'sys/cofre/placements/gold', {
      delivery: 'gold-db',
      selector: { matchLabels: { tier: 'gold' } },
    });
    // A per-cluster administrator and a publisher, with no read on database/creds/app.
    const admin = [
      'path "sys/cofre/clusters/hq" { capabilities = ["read", "update"] }',
      'path "sys/cofre/placements/*" { capabilities = ["create", "update"] }',
      'path "sys/cofre/deliveries/*" { capabilities = ["create", "update"] }',
    ].join('\n');
    await writeOk(api(), 'sys/policies/acl/db-publisher', { policy: admin });
    const made = await writeOk(api(), 'auth/token/create', { policies: ['db-publisher'], no_parent: true });
    const token = made.body.auth.client_token as string;
    const refused: [string, string, unknown][] = [
      ['PUT', 'sys/cofre/clusters/hq', { labels: { region: 'us', tier: 'gold' } }],
      ['PUT', 'sys/cofre/placements/sneaky', { delivery: 'gold-db', clusters: ['hq'] }],
      [
        'PUT',
        'sys/cofre/deliveries/mine',
        { namespace: 'mine', items: [{ name: 'm', mode: 'secret', database: { mount: 'database', role: 'app' } }] },
      ],
    ];
    for (const [method, path, body] of refused) {
      const res = await call(token, method, path, body);
      assert.equal(res.status, 403, `${method} ${path}: ${res.status} ${res.text}`);
    }
    assert.deepEqual((await api().call('GET', 'sys/cofre/clusters/hq')).body.data.labels, { region: 'us' });
    assert.equal((await api().call('GET', 'sys/cofre/placements/sneaky')).status, 404);
    // With read on the role's credentials, the same placement is allowed (on no cluster, to issue nothing).
    await writeOk(api(), 'sys/policies/acl/db-publisher', {
      policy: `${admin}\npath "database/creds/app" { capabilities = ["read"] }`,
    });
    const placed = await call(token, 'PUT', 'sys/cofre/placements/sneaky', {
      delivery: 'gold-db',
      selector: { matchLabels: { tier: 'none' } },
    });
    assert.equal(placed.status, 204, placed.text);
    for (const path of ['sys/cofre/placements/sneaky', 'sys/cofre/placements/gold', 'sys/cofre/deliveries/gold-db']) {
      assert.equal((await api().call('DELETE', path)).status, 204, path);
    }
  });

  it('status, reads, reports, the audit log and the storage file hold no password', async () => {
    const texts = [
      (await api().call('GET', 'sys/cofre/placements/app-eu')).text,
      (await api().call('GET', 'sys/cofre/clusters/store-1')).text,
      (await api().call('GET', 'sys/cofre/deliveries/app')).text,
      (await api().call('LIST', 'sys/leases/lookup/database/creds/app')).text,
    ];
    const audit = readFileSync(join(server.dir, 'audit.log'), 'utf8');
    const storage = readFileSync(join(server.dir, 'cofre.db'));
    assert.ok(passwords.size >= 6, `${passwords.size} passwords seen`);
    for (const password of passwords) {
      for (const text of texts) assert.ok(!text.includes(password), 'a password in a read');
      assert.ok(!audit.includes(password), 'a password in the audit log');
      assert.ok(!storage.includes(password), 'a password in clear in the storage file');
    }
    // Each issue is on record, for the cluster it was made for (HMAC'd as every value is).
    const issued = audit
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; request: { path: string; data?: Record<string, string> } })
      .filter((e) => e.type === 'response' && e.request.path.startsWith('database/creds/'));
    assert.ok(issued.length >= 8, `${issued.length} issues on record`);
    for (const entry of issued) assert.match(entry.request.data?.cofre_cluster ?? '', /^hmac-sha256:/);
    const hash = await writeOk(api(), 'sys/audit-hash/file', { input: 'store-1' });
    const store1 = issued.filter((e) => e.request.data?.cofre_cluster === hash.body.data.hash);
    assert.ok(store1.length >= 3, `${store1.length} issues for store-1 found by its hash`);
  });
});

/**
 * Two nodes in this process on one PostgreSQL store (the same server is the database the role issues on): the
 * credential is issued where the agent fetches, and only the node that runs the background jobs renews and
 * revokes it.
 */
describe('multi-cluster database sources on two nodes: one node renews and revokes', () => {
  let db: TestDatabase;
  const nodes: { cofre: Cofre; api: Api; url: string }[] = [];

  before(async () => {
    db = await startPostgres();
    for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    for (const name of ['a', 'b']) {
      const cofre = await createCofre({
        storage: { type: 'postgresql', connectionUrl: db.url, table: 'cofre_clusters_database' },
        apiAddr: `http://node-${name}:8200`,
        logLevel: 'error',
      });
      await cofre.http.listen({ host: '127.0.0.1', port: 0 });
      const address = cofre.http.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      nodes.push({ cofre, url, api: apiClient(url) });
    }
    const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(init.status, 200, init.text);
    for (const node of nodes) {
      const res = await node.api.call('PUT', 'sys/unseal', { body: { key: init.body.keys[0] } });
      assert.equal(res.body.sealed, false, res.text);
      node.api = apiClient(node.url, init.body.root_token);
    }
  });
  after(async () => {
    for (const node of nodes) await node.cofre.close();
    await db?.stop();
  });

  it('the standby issues at the fetch; the leader alone renews, and revokes when the placement goes', async () => {
    const leading = await until(
      'a node leads',
      async () => {
        for (const node of nodes) if (node.cofre.core.runsBackground) return node;
        return undefined;
      },
      20_000,
    );
    const standby = nodes.find((n) => n !== leading)!;
    const keeper = (node: (typeof nodes)[number]) => clustersOf(node.cofre.core).keeper.snapshot();
    // Everything through the standby, as a load balancer might send it.
    const api = standby.api;
    await writeOk(api, 'sys/mounts/database', { type: 'database' });
    await writeOk(api, 'database/config/main', {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    await writeOk(api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: flavor.creation,
      default_ttl: '4s',
      max_ttl: '1h',
    });
    const registered = await writeOk(api, 'sys/cofre/clusters/edge-1', { labels: { tier: 'edge' } });
    const keys = await AgentKeys.generate();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id } = await enrol({ address: standby.url }, registered.body.data.bootstrap_token, pub, 't');
    const agent = new AgentProtocol({ address: standby.url, clusterId: cluster_id, keys });
    await writeOk(api, 'sys/cofre/deliveries/app', {
      namespace: 'app',
      items: [{ name: 'app-db', mode: 'secret', database: { mount: 'database', role: 'app' } }],
    });
    await writeOk(api, 'sys/cofre/placements/edge', { delivery: 'app', selector: { matchLabels: { tier: 'edge' } } });
    const { payload } = await agent.fetchAndOpen({ delivery: 'app', namespace: 'app', revision: 1 });
    const data = payload.objects[0]!.data;
    const username = Buffer.from(data.username!, 'base64').toString('utf8');
    const password = Buffer.from(data.password!, 'base64').toString('utf8');
    assert.equal(keeper(standby).issued, 1);

    await sleep(5000); // past the 4 s TTL
    await flavor.runAs(db, username, password, flavor.allowedSelect);
    assert.ok(keeper(leading).renewed >= 1, 'the leader renewed the lease');
    assert.deepEqual([keeper(standby).running, keeper(standby).renewed], [false, 0], 'the standby did not');

    assert.equal((await api.call('DELETE', 'sys/cofre/placements/edge')).status, 204);
    await until('the user dropped', async () => !(await flavor.userExists(db, username)), 10_000);
    assert.equal(keeper(leading).revoked, 1);
    assert.equal(keeper(standby).revoked, 0);
  });

  it('fetches racing on both nodes hand out one credential; what a losing node issued is revoked', async () => {
    const api = nodes[0]!.api;
    const registered = await writeOk(api, 'sys/cofre/clusters/race-1', { labels: { tier: 'race' } });
    const keys = await AgentKeys.generate();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id } = await enrol({ address: nodes[0]!.url }, registered.body.data.bootstrap_token, pub, 't');
    // The same agent, as a load balancer would spread its fetches over both nodes.
    const agents = nodes.map((n) => new AgentProtocol({ address: n.url, clusterId: cluster_id, keys }));
    await writeOk(api, 'sys/cofre/deliveries/race', {
      namespace: 'race',
      items: [{ name: 'race-db', mode: 'secret', database: { mount: 'database', role: 'app' } }],
    });
    const before = new Set(await flavor.dynamicUsers(db));
    await writeOk(api, 'sys/cofre/placements/race', { delivery: 'race', selector: { matchLabels: { tier: 'race' } } });
    // Both nodes find no credential record and issue at once; one record write wins, the other node's is refused.
    const fetched = await Promise.all(
      [0, 1, 0, 1, 0, 1].map(async (i) => {
        const { payload } = await agents[i]!.fetchAndOpen({ delivery: 'race', namespace: 'race', revision: 1 });
        return Buffer.from(payload.objects[0]!.data.username!, 'base64').toString('utf8');
      }),
    );
    assert.equal(new Set(fetched).size, 1, `one credential for every fetch: ${[...new Set(fetched)].join(', ')}`);
    const issued = (await flavor.dynamicUsers(db)).filter((u) => !before.has(u));
    assert.deepEqual(issued, [fetched[0]], 'the losing node revoked what it issued; only the recorded user is left');
    const held = await clustersOf(nodes[1]!.cofre.core).store.credential('race-1', 'race');
    assert.equal(held?.current.length, 1);

    assert.equal((await api.call('DELETE', 'sys/cofre/placements/race')).status, 204);
    await until('the user dropped', async () => !(await flavor.userExists(db, fetched[0]!)), 10_000);
  });
});

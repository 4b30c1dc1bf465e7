import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { postgresBinDir, startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { lostWrites, startCrashWriters, tempDir, until } from './support.js';
import { leaderOf, startCluster, unseal, type Node, stopCluster } from './cluster-support.js';
import { AgentKeys } from '../src/kube/cluster-agent/keys.js';
import { AgentProtocol, enrol, loginProof } from '../src/kube/cluster-agent/protocol.js';

const execFileP = promisify(execFile);

/**
 * Three Cofre server processes on one PostgreSQL (issue 5): every node serves reads and writes, caches follow
 * what the other nodes change, one node leads and runs lease expiry, and a new one takes over when it dies.
 */
/** Another node's caches follow a change within a second (PostgreSQL's NOTIFY): waits until it answers `status`. */
async function answersSoon(node: Node, path: string, token: string, status: number): Promise<void> {
  await until(
    `${node.name} answers ${status} on ${path}`,
    async () => ((await node.api.call('GET', path, { token })).status === status ? true : undefined),
    1000,
  );
}

describe('three nodes on one PostgreSQL', () => {
  let db: TestDatabase;
  const dir = tempDir('cluster');
  let nodes: Node[] = [];
  let keys: string[] = [];
  let root = '';

  before(async () => {
    db = await startPostgres();
    ({ nodes, keys, root } = await startCluster(dir, ['n1', 'n2', 'n3'], db.url));
  });

  /** Mounts the database engine at `mount` on `node`, connected to the test's PostgreSQL as "pg"; returns a PUT. */
  async function mountDatabaseEngine(node: Node, mount: string) {
    const put = (path: string, body: unknown) => node.api.call('PUT', path, { body });
    assert.equal((await put(`sys/mounts/${mount}`, { type: 'database' })).status, 204);
    const config = await put(`${mount}/config/pg`, {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres`,
      username: db.user,
      password: db.password,
      allowed_roles: '*',
    });
    assert.equal(config.status, 204, config.text);
    return put;
  }

  after(() => stopCluster(nodes, db, dir));

  // Another node hears of a change through PostgreSQL's NOTIFY: on a busy machine that can take a few
  // milliseconds after the write was acknowledged, so reads elsewhere are checked within a second, not at once.
  it('a write on one node reads back on another within a second; the mount table is shared', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    assert.equal(
      (await n1.api.call('POST', 'sys/mounts/secret', { body: { type: 'kv', options: { version: '2' } } })).status,
      204,
    );
    for (let i = 0; i < 20; i++) {
      const value = `v-${i}`;
      const put = await n1.api.call('PUT', 'secret/data/app/db', { body: { data: { password: value } } });
      assert.equal(put.status, 200, put.text);
      await until(
        `n3 reads ${value}`,
        async () => {
          const read = await n3.api.call('GET', 'secret/data/app/db');
          if (read.status === 404) return undefined; // the mount, then the write, reach n3 within the second
          assert.equal(read.status, 200, read.text);
          return read.body.data.data.password === value ? true : undefined;
        },
        1000,
      );
    }
    const other = await n2.api.call('GET', 'secret/data/app/db');
    assert.equal(other.body.data.metadata.version, 20);
  });

  // Each node serialises the writes of one key, but nodes know nothing of each other's locks: two nodes reading the
  // same metadata at once both took its next version number, and the later commit overwrote the earlier one's data
  // and metadata, although both writers had been answered 200 with that version.
  it('writes of one secret racing on three nodes lose none: each acknowledged write is its own version', async () => {
    const path = 'secret/data/race/shared';
    const meta = await nodes[0]!.api.call('POST', 'secret/metadata/race/shared', { body: { max_versions: 1000 } });
    assert.equal(meta.status, 204, meta.text);
    const writes = nodes.flatMap((node) =>
      Array.from({ length: 25 }, async (_, i) => {
        const value = `${node.name}-${i}`;
        const put = await node.api.call('POST', path, { body: { data: { value } } });
        assert.equal(put.status, 200, `${value}: ${put.text}`);
        return { value, version: put.body.data.version as number };
      }),
    );
    const written = await Promise.all(writes);
    const versions = written.map((w) => w.version).sort((a, b) => a - b);
    assert.deepEqual(
      versions,
      Array.from({ length: written.length }, (_, i) => i + 1),
      'one version per write',
    );
    for (const { value, version } of written) {
      const read = await nodes[version % nodes.length]!.api.call('GET', `${path}?version=${version}`);
      assert.equal(read.status, 200, read.text);
      assert.equal(read.body.data.data.value, value, `version ${version} holds the write it was acknowledged for`);
    }
    const current = await nodes[1]!.api.call('GET', 'secret/metadata/race/shared');
    assert.equal(current.body.data.current_version, written.length);
  });

  // A token's uses are counted in its stored entry, a read-modify-write under a lock that spans one node only: two
  // nodes reading "one use left" at once both took it, so a response-wrapping token could be unwrapped twice.
  it('the uses of a limited token racing on three nodes: never more than it has; a wrapped answer unwraps once', async () => {
    for (let round = 0; round < 3; round++) {
      const created = await nodes[0]!.api.call('POST', 'auth/token/create', {
        body: { policies: ['default'], num_uses: 3 },
      });
      assert.equal(created.status, 200, created.text);
      const token = created.body.auth.client_token as string;
      // Every node has the entry cached with its three uses, as a token in use is.
      for (const node of nodes) {
        const seen = await node.api.call('POST', 'auth/token/lookup', { body: { token } });
        assert.equal(seen.body.data.num_uses, 3, seen.text);
      }
      const tries = await Promise.all(
        nodes.flatMap((node) =>
          Array.from({ length: 8 }, () => node.api.call('GET', 'auth/token/lookup-self', { token })),
        ),
      );
      const served = tries.filter((t) => t.status === 200).length;
      assert.ok(served <= 3, `round ${round}: ${served} requests served with a token of 3 uses`);
      assert.ok(
        tries.every((t) => t.status === 200 || t.status === 403),
        tries.map((t) => t.status).join(' '),
      );

      const wrapped = await nodes[0]!.api.call('POST', 'sys/wrapping/wrap', {
        body: { secret: `round-${round}` },
        headers: { 'x-vault-wrap-ttl': '300' },
      });
      assert.equal(wrapped.status, 200, wrapped.text);
      const wrapping = wrapped.body.wrap_info.token as string;
      for (const node of nodes) {
        assert.equal((await node.api.call('POST', 'sys/wrapping/lookup', { body: { token: wrapping } })).status, 200);
      }
      const unwraps = await Promise.all(
        nodes.flatMap((node) =>
          Array.from({ length: 4 }, () => node.api.call('POST', 'sys/wrapping/unwrap', { body: { token: wrapping } })),
        ),
      );
      const opened = unwraps.filter((u) => u.status === 200);
      assert.equal(opened.length, 1, `round ${round}: unwrapped ${opened.length} times`);
      assert.equal(opened[0]!.body.data.secret, `round-${round}`);
    }
  });

  it('uses of a limited token racing its revocation on another node: none is served once the revoke is acknowledged', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    for (let round = 0; round < 3; round++) {
      const created = await n1.api.call('POST', 'auth/token/create', {
        body: { policies: ['default'], num_uses: 10_000 },
      });
      const token = created.body.auth.client_token as string;
      // Each node has the entry cached, as a token in use is: only the use itself reads past the cache.
      for (const node of nodes) {
        assert.equal((await node.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
      }
      let revokedAt = Infinity;
      const tries: { startedAt: number; status: number }[] = [];
      let firstServed!: () => void;
      const served = new Promise<void>((resolve) => (firstServed = resolve));
      // Four callers per node, each asking again as soon as it has its answer, until 100 ms after the revoke was
      // acknowledged (a fixed count of requests could all be done before it on a loaded machine: no race then).
      const caller = async (node: Node): Promise<void> => {
        for (let i = 0; i < 5_000 && performance.now() < revokedAt + 100; i++) {
          const startedAt = performance.now();
          const res = await node.api.call('GET', 'auth/token/lookup-self', { token });
          tries.push({ startedAt, status: res.status });
          if (res.status === 200) firstServed();
        }
      };
      const callers = Promise.all([n2, n3, n2, n3, n2, n3, n2, n3].map(caller));
      // The revocation is sent while the token is being used: after a first use was served.
      let noUse: NodeJS.Timeout | undefined;
      await Promise.race([
        served,
        new Promise((_, reject) => {
          noUse = setTimeout(() => reject(new Error(`round ${round}: no use of the token was served in 10 s`)), 10_000);
        }),
      ]).finally(() => clearTimeout(noUse));
      await new Promise((resolve) => setTimeout(resolve, 20 + round * 15));
      const revoked = await n1.api.call('POST', 'auth/token/revoke', { body: { token } });
      revokedAt = performance.now();
      assert.equal(revoked.status, 204, revoked.text);
      await callers;

      const statuses = tries.map((t) => t.status);
      assert.ok(
        statuses.every((s) => s === 200 || s === 403),
        statuses.join(' '),
      );
      const after = tries.filter((t) => t.startedAt > revokedAt);
      const servedAfter = after.filter((t) => t.status === 200).length;
      assert.equal(
        servedAfter,
        0,
        `round ${round}: ${servedAfter} of ${after.length} requests sent after the revoke served`,
      );
      // The race took place: the token served before its revocation and was refused after it.
      assert.ok(statuses.includes(200) && after.length > 0, `round ${round}: ${statuses.join(' ')}`);
      // No use that raced the revocation wrote the token back: once every node has heard, it is gone everywhere.
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const node of nodes) {
        assert.equal((await node.api.call('GET', 'auth/token/lookup-self', { token })).status, 403, node.name);
        const looked = await node.api.call('POST', 'auth/token/lookup', { body: { token } });
        assert.notEqual(looked.status, 200, `${node.name}: ${looked.text}`);
      }
    }
  });

  it('renewals of a lease racing its revocation on another node never write the lease back', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const put = await mountDatabaseEngine(n1, 'dbrace');
    const role = await put('dbrace/roles/racer', {
      db_name: 'pg',
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`],
      // A renewal that takes a moment and touches no role (as a renewal that only logs would): a revocation on
      // another node drops the user and forgets the lease meanwhile, and the renewal then writes its record.
      renew_statements: ['SELECT pg_sleep(0.03)'],
      default_ttl: 600,
      max_ttl: 3600,
    });
    assert.equal(role.status, 204, role.text);
    for (let round = 0; round < 4; round++) {
      const creds = await n1.api.call('GET', 'dbrace/creds/racer');
      assert.equal(creds.status, 200, creds.text);
      const leaseId = creds.body.lease_id as string;
      const username = creds.body.data.username as string;
      for (const node of nodes) {
        const known = await until(
          `${node.name} knows the lease`,
          async () =>
            (await node.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })).status === 200
              ? true
              : undefined,
          2000,
        );
        assert.ok(known);
      }
      const renewals: number[] = [];
      const renewer = async (node: Node): Promise<void> => {
        for (let i = 0; i < 4; i++) {
          const res = await node.api.call('PUT', 'sys/leases/renew', { body: { lease_id: leaseId, increment: 300 } });
          renewals.push(res.status);
        }
      };
      const renewing = Promise.all([renewer(n2), renewer(n3)]);
      await sleep(10 + round * 20);
      const revoked = await n1.api.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } });
      assert.equal(revoked.status, 204, revoked.text);
      await renewing;
      assert.ok(
        renewals.every((s) => s === 200 || s === 400),
        renewals.join(' '),
      );
      await sleep(300);
      for (const node of nodes) {
        const looked = await node.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } });
        assert.notEqual(looked.status, 200, `round ${round}, ${node.name} still has the revoked lease: ${looked.text}`);
      }
      assert.equal((await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).length, 0);
    }
  });

  it('logins racing on three nodes with a secret ID of 2 uses: exactly 2 log in', async () => {
    const [n1] = nodes as [Node, Node, Node];
    assert.equal((await n1.api.call('POST', 'sys/auth/approle', { body: { type: 'approle' } })).status, 204);
    const role = await n1.api.call('POST', 'auth/approle/role/racer', { body: { secret_id_num_uses: 2 } });
    assert.equal(role.status, 204, role.text);
    const roleId = (await n1.api.call('GET', 'auth/approle/role/racer/role-id')).body.data.role_id as string;
    for (let round = 0; round < 3; round++) {
      const secretId = (await n1.api.call('POST', 'auth/approle/role/racer/secret-id')).body.data.secret_id as string;
      const login = (node: Node) =>
        node.api.call('POST', 'auth/approle/login', { token: '', body: { role_id: roleId, secret_id: secretId } });
      // Each node knows the mount and has read the secret ID's entry: one more lookup of it finds it.
      for (const node of nodes) {
        await until(
          `${node.name} knows the approle mount`,
          async () =>
            (await node.api.call('POST', 'auth/approle/role/racer/secret-id/lookup', { body: { secret_id: secretId } }))
              .status === 200
              ? true
              : undefined,
          2000,
        );
      }
      const logins = await Promise.all(nodes.flatMap((node) => Array.from({ length: 8 }, () => login(node))));
      const in_ = logins.filter((l) => l.status === 200).length;
      assert.equal(
        in_,
        2,
        `round ${round}: ${in_} logins with a secret ID of 2 uses (${logins.map((l) => l.status).join(' ')})`,
      );
      assert.ok(
        logins.every((l) => l.status === 200 || l.status === 400),
        logins.map((l) => l.text).join('\n'),
      );
    }
  });

  it('a token revoked on one node is refused on another within a second', async () => {
    const [n1, n2] = nodes as [Node, Node, Node];
    for (let i = 0; i < 5; i++) {
      const created = await n1.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
      const token = created.body.auth.client_token as string;
      // Used on n1 first, so n1 has it cached.
      assert.equal((await n1.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
      assert.equal((await n2.api.call('POST', 'auth/token/revoke', { body: { token } })).status, 204);
      await answersSoon(n1, 'auth/token/lookup-self', token, 403);
    }
  });

  it('disabling an auth method on one node leaves no live token from logins the other nodes served', async () => {
    // The other nodes hear of the unmount only after the disabling node revoked the method's tokens: what they
    // issued meanwhile is refused by the closing mark each registration checks in the store.
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    let issued = 0;
    let refused = 0;
    for (let round = 0; round < 3; round++) {
      const mount = `cluster-gone-${round}`;
      assert.equal((await n1.api.call('POST', `sys/auth/${mount}`, { body: { type: 'approle' } })).status, 204);
      const role = { token_ttl: '1h', token_policies: 'default' };
      assert.equal((await n1.api.call('POST', `auth/${mount}/role/r`, { body: role })).status, 204);
      const roleId = (await n1.api.call('GET', `auth/${mount}/role/r/role-id`)).body.data.role_id;
      const secretId = (await n1.api.call('POST', `auth/${mount}/role/r/secret-id`)).body.data.secret_id;
      await answersSoon(n2, `auth/${mount}/role/r/role-id`, root, 200);
      await answersSoon(n3, `auth/${mount}/role/r/role-id`, root, 200);
      const tokens: { node: Node; token: string }[] = [];
      let racing = true;
      const logins = [n2, n3, n2, n3, n2, n3].map(async (node) => {
        while (racing) {
          const login = await node.api.call('POST', `auth/${mount}/login`, {
            body: { role_id: roleId, secret_id: secretId },
            token: '',
          });
          if (login.status === 200) tokens.push({ node, token: login.body.auth.client_token });
          else {
            assert.ok(login.status >= 400 && login.status < 500, `${login.status} ${login.text}`);
            refused++;
          }
        }
      });
      await sleep(60);
      const disabled = await n1.api.call('DELETE', `sys/auth/${mount}`);
      await sleep(300);
      racing = false;
      await Promise.all(logins);
      assert.equal(disabled.status, 204, disabled.text);
      issued += tokens.length;
      let live = 0;
      for (const { node, token } of tokens) {
        if ((await node.api.call('GET', 'auth/token/lookup-self', { token })).status !== 403) live++;
      }
      assert.equal(live, 0, `round ${round}: ${live} of ${tokens.length} tokens outlived ${mount}`);
      const leases = await n1.api.call('LIST', `sys/leases/lookup/auth/${mount}/login/`);
      assert.equal(leases.status, 404, leases.text);
    }
    assert.ok(issued > 0, 'some logins got through before the disable');
    assert.ok(refused > 0, 'some logins ran after it');
  });

  it('a bootstrap token enrols once and a login proof logs in once, whichever nodes they reach', async () => {
    // Each node's key lock and nonce memory span that node only: enrolments racing on three nodes each consumed the
    // token (the last write's keys won, the others' agents were answered and then locked out), and a login replayed
    // to another node within its window got a token. The store's checks decide now.
    const registered = await nodes[0]!.api.call('PUT', 'sys/cofre/clusters/cluster-race', { body: { labels: {} } });
    assert.equal(registered.status, 200, registered.text);
    const bootstrap = registered.body.data.bootstrap_token as string;
    await answersSoon(nodes[2]!, 'sys/cofre/clusters/cluster-race', root, 200);
    const contenders = await Promise.all(Array.from({ length: 12 }, () => AgentKeys.generate()));
    const results = await Promise.allSettled(
      contenders.map((keys, i) =>
        enrol(
          { address: nodes[i % nodes.length]!.url },
          bootstrap,
          { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey },
          'test/cluster',
        ),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ keys: contenders[i]!, ...r.value }] : []));
    assert.equal(won.length, 1, `${won.length} of 12 enrolments consumed one bootstrap token`);
    for (const r of results) if (r.status === 'rejected') assert.match(String(r.reason), /403/);
    const winner = won[0]!;
    for (let round = 0; round < 3; round++) {
      const proof = loginProof(winner.cluster_id, winner.keys);
      const answers = await Promise.all(
        [...nodes, ...nodes, ...nodes].map((node) =>
          node.api.call('PUT', 'sys/cofre/agent/login', { token: '', body: proof }),
        ),
      );
      const ok = answers.filter((a) => a.status === 200).length;
      assert.equal(ok, 1, `round ${round}: ${ok} logins with one proof`);
      for (const a of answers) assert.ok(a.status === 200 || a.status === 403, `${a.status} ${a.text}`);
    }
  });

  it("an agent's stream on one node ends as its token is revoked on another, not at the 30 s ping", async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const registered = await n1.api.call('PUT', 'sys/cofre/clusters/stream-revoked', { body: { labels: {} } });
    assert.equal(registered.status, 200, registered.text);
    await answersSoon(n2, 'sys/cofre/clusters/stream-revoked', root, 200);
    const keys = await AgentKeys.generate();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    const { cluster_id: clusterId } = await enrol(
      { address: n2.url },
      registered.body.data.bootstrap_token as string,
      pub,
      'test/cluster',
    );
    const agent = new AgentProtocol({ address: n2.url, clusterId, keys });
    const token = await agent.currentToken();
    let connected = false;
    let endedAt = 0;
    const stream = agent.stream(
      {
        onHello: () => undefined,
        onDelivery: () => undefined,
        onConnected: (c) => {
          if (c) connected = true;
          else if (connected && !endedAt) endedAt = Date.now();
        },
      },
      { minDelayMs: 10_000 },
    );
    try {
      await until('the stream is connected on n2', async () => connected || undefined, 5_000);
      const revoked = await n3.api.call('POST', 'auth/token/revoke', { body: { token } });
      assert.equal(revoked.status, 204, revoked.text);
      const at = Date.now();
      await until('the stream on n2 ended', async () => endedAt > 0 || undefined, 5_000);
      assert.ok(endedAt - at < 5_000, `ended ${endedAt - at} ms after the revoke`);
    } finally {
      stream.close();
      await n1.api.call('DELETE', 'sys/cofre/clusters/stream-revoked');
    }
  });

  it('a policy changed on one node applies on another within a second', async () => {
    const [, n2, n3] = nodes as [Node, Node, Node];
    const rule = (p: string) => `path "secret/data/${p}" { capabilities = ["read"] }`;
    assert.equal(
      (await n3.api.call('PUT', 'sys/policies/acl/reader', { body: { policy: rule('app/*') } })).status,
      204,
    );
    const created = await n3.api.call('POST', 'auth/token/create', { body: { policies: ['reader'] } });
    const token = created.body.auth.client_token as string;
    assert.equal((await n2.api.call('GET', 'secret/data/app/db', { token })).status, 200);
    assert.equal(
      (await n3.api.call('PUT', 'sys/policies/acl/reader', { body: { policy: rule('other/*') } })).status,
      204,
    );
    await answersSoon(n2, 'secret/data/app/db', token, 403);
    assert.equal(
      (await n3.api.call('PUT', 'sys/policies/acl/reader', { body: { policy: rule('app/*') } })).status,
      204,
    );
    await answersSoon(n2, 'secret/data/app/db', token, 200);
  });

  it('a token that may only update never creates a secret that a delete on another node took away meanwhile', async () => {
    const [n1, n2] = nodes as [Node, Node, Node];
    const mount = await n1.api.call('POST', 'sys/mounts/race-kv', { body: { type: 'kv', options: { version: '2' } } });
    assert.equal(mount.status, 204, mount.text);
    await answersSoon(n2, 'sys/mounts/race-kv', root, 200);
    const policy = 'path "race-kv/data/*" { capabilities = ["update"] }';
    assert.equal((await n1.api.call('PUT', 'sys/policies/acl/update-race', { body: { policy } })).status, 204);
    const created = await n1.api.call('POST', 'auth/token/create', { body: { policies: ['update-race'] } });
    const token = created.body.auth.client_token as string;
    const outcomes: Record<number, number> = {};
    for (let i = 0; i < 20; i++) {
      const path = `k${i}`;
      assert.equal((await n1.api.call('PUT', `race-kv/data/${path}`, { body: { data: { n: i } } })).status, 200);
      const [removed, written] = await Promise.all([
        n2.api.call('DELETE', `race-kv/metadata/${path}`),
        n1.api.call('PUT', `race-kv/data/${path}`, { token, body: { data: { by: 'updater' } } }),
      ]);
      assert.equal(removed.status, 204, removed.text);
      assert.ok([200, 403].includes(written.status), `${written.status} ${written.text}`);
      outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
      // Written before the delete (which removed it) or refused: gone on both nodes, once n1 heard of the delete.
      await answersSoon(n1, `race-kv/metadata/${path}`, root, 404);
      assert.equal((await n2.api.call('GET', `race-kv/metadata/${path}`)).status, 404, `round ${i}`);
    }
    // Writes refused (at the check, or once under the lock) and, mostly, some that came first: 10-13 of 20 here.
    assert.ok((outcomes[403] ?? 0) > 0, JSON.stringify(outcomes));
  });

  it('while another node changes the mount table, the mounts it did not touch keep serving, never 404', async () => {
    const [n1, n2] = nodes as [Node, Node, Node];
    assert.equal((await n1.api.call('POST', 'sys/mounts/steady', { body: { type: 'kv' } })).status, 204);
    assert.equal((await n1.api.call('PUT', 'steady/app', { body: { v: 's' } })).status, 204);
    await answersSoon(n2, 'steady/app', root, 200);
    let reading = true;
    const missed: number[] = [];
    const reader = (async () => {
      while (reading) {
        const read = await n2.api.call('GET', 'steady/app');
        if (read.status !== 200) missed.push(read.status);
      }
    })();
    for (let i = 0; i < 15; i++) {
      assert.equal((await n1.api.call('POST', `sys/mounts/churn${i}`, { body: { type: 'kv' } })).status, 204);
      await answersSoon(n2, `sys/mounts/churn${i}/tune`, root, 200);
      assert.equal((await n1.api.call('DELETE', `sys/mounts/churn${i}`)).status, 204);
    }
    reading = false;
    await reader;
    assert.deepEqual(missed, [], 'a read of an untouched mount failed while the table was reloaded');
  });

  it('a barrier key rotated on one node is used and read by the others', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const before = (await n2.api.call('GET', 'sys/key-status')).body.data.term as number;
    assert.equal((await n1.api.call('PUT', 'sys/rotate')).status, 204);
    // Read at once on n3, which may not have heard of the new term yet: it reads the keyring again when it meets
    // an entry of a newer term. Written on n3, read on n2. Every node knows the new term within a second.
    assert.equal((await n1.api.call('PUT', 'secret/data/rotated/a', { body: { data: { v: 'a' } } })).status, 200);
    assert.equal((await n3.api.call('GET', 'secret/data/rotated/a')).body.data.data.v, 'a');
    assert.equal((await n3.api.call('PUT', 'secret/data/rotated/b', { body: { data: { v: 'b' } } })).status, 200);
    assert.equal((await n2.api.call('GET', 'secret/data/rotated/b')).body.data.data.v, 'b');
    await until(
      'n2 reports the new term',
      async () => ((await n2.api.call('GET', 'sys/key-status')).body.data.term === before + 1 ? true : undefined),
      1000,
    );
  });

  it("a write on one node reaches another node's change stream", async () => {
    const [n1, n2] = nodes as [Node, Node, Node];
    const controller = new AbortController();
    const res = await fetch(`${n2.url}/v1/sys/cofre/events`, {
      headers: { 'x-vault-token': root },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let seen = '';
    const arrived = (async () => {
      while (!seen.includes('secret/streamed/x')) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += Buffer.from(value).toString();
      }
    })();
    await sleep(200);
    assert.equal((await n1.api.call('PUT', 'secret/data/streamed/x', { body: { data: { v: 1 } } })).status, 200);
    await Promise.race([arrived, sleep(3000)]);
    controller.abort();
    assert.match(seen, /secret\/streamed\/x/);
  });

  it('exactly one node leads; sys/leader and sys/ha-status agree', async () => {
    const leader = await until('a leader is elected', () => leaderOf(nodes), 10_000);
    let leading = 0;
    for (const node of nodes) {
      const res = await node.api.call('GET', 'sys/leader');
      assert.equal(res.body.ha_enabled, true);
      assert.equal(res.body.leader_address, leader.url);
      if (res.body.is_self) leading++;
    }
    assert.equal(leading, 1);
    const ha = await nodes[1]!.api.call('GET', 'sys/ha-status');
    assert.equal(ha.status, 200, ha.text);
    assert.equal(ha.body.data.nodes.length, 3);
    assert.equal(ha.body.data.nodes.filter((n: { active_node: boolean }) => n.active_node).length, 1);
  });

  it('a leader that is sealed hands over: a sealed node does not hold the lock', async () => {
    const leader = await until('a leader is elected', () => leaderOf(nodes), 10_000);
    assert.equal((await leader.api.call('PUT', 'sys/seal')).status, 204);
    const others = nodes.filter((n) => n !== leader);
    await until('another node leads', () => leaderOf(others), 10_000);
    await unseal(leader, keys, 2);
    assert.equal((await leader.api.call('GET', 'sys/leader')).body.is_self, false);
  });

  it('SIGKILL of the leader: another leads within 10 s and revokes a lease on time, once', async () => {
    await db.query('CREATE TABLE IF NOT EXISTS revocations (name text)');
    const leader = await until('a leader is elected', () => leaderOf(nodes), 10_000);
    const follower = nodes.find((n) => n !== leader)!;
    const put = await mountDatabaseEngine(follower, 'database');
    await put('database/roles/short', {
      db_name: 'pg',
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`],
      // Each revocation leaves a row: two revocations of one lease would leave two.
      revocation_statements: [`INSERT INTO revocations VALUES ('{{name}}'); DROP ROLE IF EXISTS "{{name}}"`],
      default_ttl: 8,
    });
    const creds = await follower.api.call('GET', 'database/creds/short');
    assert.equal(creds.status, 200, creds.text);
    const username = creds.body.data.username as string;
    const expiresAt = Date.now() + 8000;

    await leader.kill('SIGKILL');
    const killedAt = Date.now();
    const survivors = nodes.filter((n) => n !== leader);
    const next = await until('another node leads', () => leaderOf(survivors), 10_000);
    assert.ok(Date.now() - killedAt < 10_000);
    assert.notEqual(next, leader);

    await until(
      'the lease is revoked',
      async () =>
        (await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).length === 0 ? true : undefined,
      15_000,
    );
    assert.ok(Date.now() - expiresAt < 3000, `revoked ${Date.now() - expiresAt} ms after the lease expired`);
    await sleep(1000);
    const rows = await db.query('SELECT count(*)::int AS n FROM revocations WHERE name = $1', [username]);
    assert.equal(rows[0]?.n, 1, 'revoked exactly once');
    nodes = survivors;
  });

  it('the PostgreSQL table holds no plaintext of values or tokens (pg_dump)', async () => {
    const node = nodes[0]!;
    const marker = 'plaintext-marker-5d1f0c';
    assert.equal((await node.api.call('PUT', 'secret/data/dump/check', { body: { data: { v: marker } } })).status, 200);
    const token = (await node.api.call('POST', 'auth/token/create', { body: {} })).body.auth.client_token as string;
    const { stdout } = await execFileP(
      join(postgresBinDir(), 'pg_dump'),
      ['--data-only', '-t', 'cofre_cluster*', db.url],
      {
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    assert.ok(stdout.includes('COPY public.cofre_cluster'), 'the dump holds the table');
    for (const secret of [marker, token, root, db.password, ...keys]) {
      assert.ok(!stdout.includes(secret), 'a secret is in the dump in clear');
    }
  });

  it('SIGKILL during a stream of acknowledged writes loses none of them', async () => {
    const [victim, witness] = nodes as [Node, Node];
    const { acknowledged, stop } = startCrashWriters(victim.api);
    await until('300 writes are acknowledged', async () => (acknowledged.size >= 300 ? true : undefined), 30_000);
    await victim.kill('SIGKILL');
    await stop();
    const missing = await lostWrites(witness.api, acknowledged);
    assert.deepEqual(missing, [], `${missing.length} of ${acknowledged.size} acknowledged writes lost`);
  });
});

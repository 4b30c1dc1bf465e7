// Keys, roles, the mount and audit tables and other shared entries changed on two nodes at once, on one PostgreSQL:
// each node's locks keep only its own requests in turn, so the commits check what they read
// (src/engines/transit/keys.ts, src/auth/approle/store.ts, src/core/mount-table.ts, src/core/audit-broker.ts, ...).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { tempDir } from './support.js';
import { startCluster, type Node, stopCluster } from './cluster-support.js';

const ROUNDS = 12;
/** Longer than a change takes to reach the other node (a NOTIFY away). */
const PROPAGATION_MS = 300;
const PLAINTEXT = Buffer.from('the same secret, on both nodes').toString('base64');

describe('keys, roles and mounts changed on two nodes at once', () => {
  let db: TestDatabase;
  const dir = tempDir('cluster-key-races');
  let nodes: Node[] = [];

  const call = (node: Node, method: string, path: string, body?: unknown) =>
    node.api.call(method, path, body === undefined ? {} : { body });
  const ok = async (node: Node, method: string, path: string, body?: unknown) => {
    const res = await call(node, method, path, body);
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${path} on ${node.name}: ${res.status} ${res.text}`);
    return res;
  };
  const encrypt = async (node: Node, key: string) =>
    (await ok(node, 'POST', `transit/encrypt/${key}`, { plaintext: PLAINTEXT })).body.data.ciphertext as string;
  /** Every ciphertext decrypts on every node. */
  const decryptsEverywhere = async (key: string, ciphertexts: string[]) => {
    await sleep(PROPAGATION_MS);
    for (const node of nodes) {
      for (const ciphertext of ciphertexts) {
        const res = await call(node, 'POST', `transit/decrypt/${key}`, { ciphertext });
        assert.equal(res.status, 200, `${key}: ${ciphertext.slice(0, 12)}… on ${node.name}: ${res.text}`);
        assert.equal(res.body.data.plaintext, PLAINTEXT);
      }
    }
  };

  before(async () => {
    db = await startPostgres();
    ({ nodes } = await startCluster(dir, ['k1', 'k2'], db.url));
    await ok(nodes[0]!, 'PUT', 'sys/mounts/transit', { type: 'transit' });
    await ok(nodes[0]!, 'PUT', 'sys/auth/approle', { type: 'approle' });
  });

  after(() => stopCluster(nodes, db, dir));

  it('a transit key made by an encrypt on both nodes at once is one key: both ciphertexts decrypt on both', async () => {
    const [k1, k2] = nodes as [Node, Node];
    for (let round = 0; round < ROUNDS; round++) {
      const key = `made-${round}`;
      const ciphertexts = await Promise.all([encrypt(k1, key), encrypt(k2, key)]);
      await decryptsEverywhere(key, ciphertexts);
    }
  });

  it('a transit key rotated on both nodes at once keeps both versions: what each encrypted right after decrypts', async () => {
    const [k1, k2] = nodes as [Node, Node];
    for (let round = 0; round < ROUNDS; round++) {
      const key = `rotated-${round}`;
      await ok(k1, 'POST', `transit/keys/${key}`, {});
      await encrypt(k2, key); // k2 has the key cached
      const encryptedAfter = await Promise.all(
        [k1, k2].map(async (node) => {
          await ok(node, 'POST', `transit/keys/${key}/rotate`, {});
          return encrypt(node, key);
        }),
      );
      await decryptsEverywhere(key, encryptedAfter);
      const read = await ok(k2, 'GET', `transit/keys/${key}`);
      assert.equal(read.body.data.latest_version, 3, 'two rotations, two new versions');
    }
  });

  it('one AppRole role ID given to two roles on two nodes at once: one of them gets it', async () => {
    const [k1, k2] = nodes as [Node, Node];
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = [`left-${round}`, `right-${round}`];
      await ok(k1, 'PUT', `auth/approle/role/${a}`, { token_policies: ['default'] });
      await ok(k1, 'PUT', `auth/approle/role/${b}`, { token_policies: ['default'] });
      await sleep(50);
      const roleId = `shared-${round}`;
      const answers = await Promise.all([
        call(k1, 'POST', `auth/approle/role/${a}/role-id`, { role_id: roleId }),
        call(k2, 'POST', `auth/approle/role/${b}/role-id`, { role_id: roleId }),
      ]);
      const statuses = answers.map((res) => res.status).sort();
      assert.deepEqual(statuses, [204, 400], answers.map((res) => res.text).join(' '));
      const holders = [];
      for (const name of [a, b]) {
        const read = await ok(k2, 'GET', `auth/approle/role/${name}/role-id`);
        if (read.body.data.role_id === roleId) holders.push(name);
      }
      assert.equal(holders.length, 1, `role ID ${roleId} held by ${holders.join(' and ')}`);
    }
  });

  it('engines and auth methods enabled on both nodes at once are all kept; one path taken on both is taken once', async () => {
    const [k1, k2] = nodes as [Node, Node];
    const made: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all([
        call(k1, 'POST', `sys/mounts/kv-a-${round}`, { type: 'kv', options: { version: '2' } }),
        call(k2, 'POST', `sys/mounts/kv-b-${round}`, { type: 'kv', options: { version: '2' } }),
        call(k1, 'POST', `sys/auth/up-a-${round}`, { type: 'userpass' }),
        call(k2, 'POST', `sys/auth/up-b-${round}`, { type: 'userpass' }),
      ]);
      for (const res of answers) assert.equal(res.status, 204, res.text);
      made.push(`kv-a-${round}/`, `kv-b-${round}/`);
      const same = await Promise.all([
        call(k1, 'POST', `sys/mounts/same-${round}`, { type: 'kv' }),
        call(k2, 'POST', `sys/mounts/same-${round}`, { type: 'transit' }),
      ]);
      assert.deepEqual(same.map((res) => res.status).sort(), [204, 400], same.map((res) => res.text).join(' '));
    }
    await sleep(PROPAGATION_MS);
    for (const node of nodes) {
      const mounts = (await ok(node, 'GET', 'sys/mounts')).body.data as Record<string, unknown>;
      const auth = (await ok(node, 'GET', 'sys/auth')).body.data as Record<string, unknown>;
      for (const path of made) assert.ok(path in mounts, `${path} lost on ${node.name}`);
      for (let round = 0; round < ROUNDS; round++) {
        for (const path of [`up-a-${round}/`, `up-b-${round}/`])
          assert.ok(path in auth, `${path} lost on ${node.name}`);
      }
    }
    // Each mount works where it was not made: written on one node, read on the other.
    await ok(k2, 'POST', 'kv-a-0/data/app', { data: { made: 'on k1' } });
    assert.equal((await ok(k1, 'GET', 'kv-a-0/data/app')).body.data.data.made, 'on k1');
  });

  it('audit devices enabled on both nodes at once are all kept', async () => {
    const [k1, k2] = nodes as [Node, Node];
    const enabled: string[] = [];
    for (let round = 0; round < 6; round++) {
      const answers = await Promise.all(
        [k1, k2].map((node) =>
          call(node, 'PUT', `sys/audit/${node.name}-${round}`, {
            type: 'file',
            options: { file_path: join(dir, `audit-${node.name}-${round}.log`) },
          }),
        ),
      );
      for (const res of answers) assert.equal(res.status, 204, res.text);
      enabled.push(`k1-${round}/`, `k2-${round}/`);
    }
    await sleep(PROPAGATION_MS);
    for (const node of nodes) {
      const devices = (await ok(node, 'GET', 'sys/audit')).body.data as Record<string, unknown>;
      for (const path of enabled) assert.ok(path in devices, `audit device ${path} lost on ${node.name}`);
    }
    for (const path of enabled) await ok(k1, 'DELETE', `sys/audit/${path}`);
  });

  it('a KV mount config, a chosen token ID and a custom secret ID, written on both nodes at once', async () => {
    const [k1, k2] = nodes as [Node, Node];
    await ok(k1, 'POST', 'sys/mounts/kvconf', { type: 'kv', options: { version: '2' } });
    await ok(k1, 'PUT', 'auth/approle/role/custom', { token_policies: ['default'] });
    await sleep(PROPAGATION_MS);
    for (let round = 0; round < ROUNDS; round++) {
      // Two settings, one per node: both stay.
      await Promise.all([
        ok(k1, 'POST', 'kvconf/config', { cas_required: round % 2 === 0 }),
        ok(k2, 'POST', 'kvconf/config', { max_versions: round + 1 }),
      ]);
      for (const node of nodes) {
        const config = (await ok(node, 'GET', 'kvconf/config')).body.data;
        assert.equal(config.cas_required, round % 2 === 0, `cas_required on ${node.name}, round ${round}`);
        assert.equal(config.max_versions, round + 1, `max_versions on ${node.name}, round ${round}`);
      }
      // One token ID chosen on both nodes: one token made, the other refused.
      const id = `chosen-token-${round}`;
      const tokens = await Promise.all(
        [k1, k2].map((node) => call(node, 'POST', 'auth/token/create', { id, policies: ['default'] })),
      );
      assert.deepEqual(tokens.map((res) => res.status).sort(), [200, 400], tokens.map((r) => r.text).join(' '));
      const made = tokens.find((res) => res.status === 200)!.body.auth.accessor as string;
      for (const node of nodes) {
        const looked = await ok(node, 'POST', 'auth/token/lookup-accessor', { accessor: made });
        assert.equal(looked.body.data.accessor, made, node.name);
      }
      // One custom secret ID registered on both nodes: registered once.
      const secretIds = await Promise.all(
        [k1, k2].map((node) =>
          call(node, 'POST', 'auth/approle/role/custom/custom-secret-id', { secret_id: `custom-${round}` }),
        ),
      );
      assert.deepEqual(secretIds.map((res) => res.status).sort(), [200, 400], secretIds.map((r) => r.text).join(' '));
    }
    const listed = await ok(k2, 'LIST', 'auth/approle/role/custom/secret-id');
    assert.equal(listed.body.data.keys.length, ROUNDS, 'one accessor per custom secret ID');
  });
});

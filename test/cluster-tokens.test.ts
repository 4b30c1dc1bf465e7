// Token attacks across two nodes on one PostgreSQL, where each node has caches of its own: a revocation on one node
// raced by reads on both, and children created on one node while the other revokes their parent.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { apiClient, revokeWhileMinting, tempDir } from './support.js';
import { startNode, unseal, type Node, stopCluster } from './cluster-support.js';

/** Cross-node invalidation is a NOTIFY away: a revoked token must be refused everywhere within this. */
const PROPAGATION_MS = 1000;

describe('tokens on two nodes sharing PostgreSQL', () => {
  let db: TestDatabase;
  const dir = tempDir('cluster-tokens');
  let nodes: Node[] = [];

  before(async () => {
    db = await startPostgres();
    nodes = await Promise.all(['t1', 't2'].map((name) => startNode(dir, name, db.url)));
    const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(init.status, 200, init.text);
    for (const node of nodes) {
      await unseal(node, init.body.keys, 1);
      node.api = apiClient(node.url, init.body.root_token);
    }
    const minter = 'path "auth/token/create" {\n  capabilities = ["update"]\n}\n';
    await nodes[0]!.api.call('PUT', 'sys/policies/acl/minter', { body: { policy: minter } });
  });

  after(() => stopCluster(nodes, db, dir));

  /** Each token is refused on every node within PROPAGATION_MS, and still refused a moment later. */
  async function refusedEverywhere(tokens: string[], what: string): Promise<void> {
    const status = (node: Node, token: string) =>
      node.api.call('GET', 'auth/token/lookup-self', { token }).then((r) => r.status);
    const end = Date.now() + PROPAGATION_MS;
    for (const node of nodes) {
      for (const token of tokens) {
        while ((await status(node, token)) !== 403) {
          assert.ok(Date.now() < end, `${what}: still accepted on ${node.name} ${PROPAGATION_MS} ms later`);
          await sleep(20);
        }
      }
    }
    await sleep(200);
    for (const node of nodes) {
      const accepted = (await Promise.all(tokens.map((t) => status(node, t)))).filter((s) => s !== 403);
      assert.equal(accepted.length, 0, `${what}: ${accepted.length} accepted again on ${node.name}`);
    }
  }

  it('a token revoked on one node while both read with it stays revoked on both', async () => {
    const [t1, t2] = nodes as [Node, Node];
    for (let round = 0; round < 20; round++) {
      const created = await t1.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
      const token = created.body.auth.client_token as string;
      let stop = false;
      const readers = [t1, t2, t1, t2].map(async (node) => {
        while (!stop) await node.api.call('GET', 'auth/token/lookup-self', { token });
      });
      await sleep(10);
      assert.equal((await t2.api.call('POST', 'auth/token/revoke', { body: { token } })).status, 204);
      stop = true;
      await Promise.all(readers);
      await refusedEverywhere([token], `round ${round}`);
    }
  });

  it('batch tokens issued on one node work on the other and end there when the parent is revoked there', async () => {
    const [t1, t2] = nodes as [Node, Node];
    for (let round = 0; round < 5; round++) {
      const parent = await t1.api.call('POST', 'auth/token/create', { body: { policies: ['minter'] } });
      const parentToken = parent.body.auth.client_token as string;
      const batches: string[] = [];
      for (const node of [t1, t2]) {
        const res = await node.api.call('POST', 'auth/token/create', {
          token: parentToken,
          body: { type: 'batch', ttl: '10m' },
        });
        assert.equal(res.status, 200, res.text);
        batches.push(res.body.auth.client_token as string);
      }
      for (const node of [t1, t2]) {
        for (const token of batches) {
          assert.equal((await node.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
        }
      }
      let stop = false;
      const readers = [t1, t2].flatMap((node) =>
        batches.map(async (token) => {
          while (!stop) await node.api.call('GET', 'auth/token/lookup-self', { token });
        }),
      );
      await sleep(10);
      const revoker = round % 2 === 0 ? t2 : t1;
      assert.equal((await revoker.api.call('POST', 'auth/token/revoke', { body: { token: parentToken } })).status, 204);
      stop = true;
      await Promise.all(readers);
      await refusedEverywhere(batches, `round ${round}: batch tokens of a revoked parent`);
    }
  });

  it('children created on one node while the other revokes their parent do not survive', async () => {
    const [t1, t2] = nodes as [Node, Node];
    for (let round = 0; round < 5; round++) {
      const parent = await t1.api.call('POST', 'auth/token/create', { body: { policies: ['minter'] } });
      const parentToken = parent.body.auth.client_token as string;
      const { children, revokeStatus } = await revokeWhileMinting(
        [t1, t1, t1, t2, t2, t2].map((n) => n.api),
        t2.api,
        parentToken,
        30,
      );
      assert.equal(revokeStatus, 204);
      assert.ok(children.length > 0);
      await refusedEverywhere(children, `round ${round}: ${children.length} children`);
    }
  });
});

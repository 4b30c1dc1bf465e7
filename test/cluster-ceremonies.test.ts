import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { tempDir, until } from './support.js';
import { leaderOf, startCluster, unseal, type Node, stopCluster } from './cluster-support.js';

/** The inverse of the server's encoding: base64 of token XOR otp, as `vault operator generate-root -decode`. */
function decode(encoded: string, otp: string): string {
  const bytes = Buffer.from(encoded, 'base64');
  const pad = Buffer.from(otp, 'utf8');
  return Buffer.from(bytes.map((b, i) => b ^ pad[i]!)).toString('utf8');
}

/**
 * sys/generate-root and sys/rekey on three nodes of one PostgreSQL store: the attempt lives on the leader, and the
 * other nodes forward every call to it (src/core/ceremony-forwarding.ts), so operators whose shares reach
 * different nodes behind a load balancer still reach one attempt.
 */
describe('generate-root and rekey across the nodes of a cluster', () => {
  let db: TestDatabase;
  const dir = tempDir('cluster-ceremonies');
  let nodes: Node[] = [];
  let keys: string[] = [];
  /** The leader, then the two others. */
  let leader: Node;
  let others: Node[] = [];

  const call = (node: Node, method: string, path: string, body?: unknown) =>
    node.api.call(method, path, { token: '', ...(body === undefined ? {} : { body }) });

  before(async () => {
    db = await startPostgres();
    ({ nodes, keys } = await startCluster(dir, ['c1', 'c2', 'c3'], db.url));
    leader = await until('a leader', () => leaderOf(nodes), 15_000);
    others = nodes.filter((n) => n !== leader);
  });

  after(() => stopCluster(nodes, db, dir));

  it('an attempt started on one node takes shares sent to the others and mints a root token that works', async () => {
    const [a, b] = others as [Node, Node];
    const start = await call(a, 'PUT', 'sys/generate-root/attempt', {});
    assert.equal(start.status, 200, start.text);
    const { nonce, otp } = start.body;
    assert.match(otp, /^[0-9A-Za-z]{36}$/);
    for (const node of nodes) {
      const status = await call(node, 'GET', 'sys/generate-root/attempt');
      assert.equal(status.body.started, true, `${node.name} sees the attempt`);
      assert.equal(status.body.nonce, nonce);
    }
    const first = await call(b, 'PUT', 'sys/generate-root/update', { key: keys[2], nonce });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.progress, 1);
    assert.equal((await call(leader, 'GET', 'sys/generate-root/attempt')).body.progress, 1);
    const last = await call(leader, 'PUT', 'sys/generate-root/update', { key: keys[0], nonce });
    assert.equal(last.body.complete, true, last.text);
    const token = decode(last.body.encoded_token, otp);
    for (const node of nodes) {
      const self = await node.api.call('GET', 'auth/token/lookup-self', { token });
      assert.equal(self.status, 200, `${node.name}: ${self.text}`);
      assert.deepEqual(self.body.data.policies, ['root']);
    }
    assert.equal((await call(a, 'GET', 'sys/generate-root/attempt')).body.started, false);
  });

  it('the last two shares racing on two nodes mint one token', async () => {
    const [a, b] = others as [Node, Node];
    const { nonce, otp } = (await call(leader, 'PUT', 'sys/generate-root/attempt', {})).body;
    assert.equal((await call(a, 'PUT', 'sys/generate-root/update', { key: keys[0], nonce })).body.progress, 1);
    const racing = await Promise.all([
      call(a, 'PUT', 'sys/generate-root/update', { key: keys[1], nonce }),
      call(b, 'PUT', 'sys/generate-root/update', { key: keys[2], nonce }),
    ]);
    const done = racing.filter((r) => r.status === 200 && r.body.complete === true);
    assert.equal(done.length, 1, racing.map((r) => `${r.status} ${r.text}`).join(' | '));
    const refused = racing.find((r) => r !== done[0])!;
    assert.equal(refused.status, 400, refused.text);
    const token = decode(done[0]!.body.encoded_token, otp);
    assert.equal((await b.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
  });

  it('a forged or missing forwarded call is refused and starts nothing', async () => {
    const [a] = others as [Node];
    const forged = Buffer.from('not sealed by this cluster, but long enough to look like a sealed value').toString(
      'base64',
    );
    const refused = await call(leader, 'PUT', 'sys/internal/key-ceremony', { sealed: forged });
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.text, /not sealed by a node of this cluster/);
    const empty = await call(leader, 'PUT', 'sys/internal/key-ceremony', {});
    assert.equal(empty.status, 400, empty.text);
    assert.equal((await call(a, 'GET', 'sys/generate-root/attempt')).body.started, false);
    assert.equal((await call(a, 'GET', 'sys/rekey/init')).body.started, false);
  });

  it('a rekey started on one node takes shares on the others; the new shares unseal every node, the old ones not', async () => {
    const [a, b] = others as [Node, Node];
    const init = await call(a, 'PUT', 'sys/rekey/init', { secret_shares: 3, secret_threshold: 2 });
    assert.equal(init.status, 200, init.text);
    const { nonce } = init.body;
    assert.equal((await call(b, 'GET', 'sys/rekey/init')).body.nonce, nonce);
    assert.equal((await call(b, 'PUT', 'sys/rekey/update', { key: keys[1], nonce })).body.progress, 1);
    const done = await call(leader, 'PUT', 'sys/rekey/update', { key: keys[2], nonce });
    assert.equal(done.body.complete, true, done.text);
    const rekeyed = done.body.keys as string[];
    assert.equal(rekeyed.length, 3);
    // Sealing and unsealing each node in turn; the leader last, so that the others forward to it meanwhile.
    for (const node of [a, b, leader]) {
      assert.equal((await node.api.call('PUT', 'sys/seal')).status, 204);
      const old = await call(node, 'PUT', 'sys/unseal', { key: keys[0] });
      const wrong = await call(node, 'PUT', 'sys/unseal', { key: keys[1] });
      assert.equal(wrong.status, 400, `${node.name}: the old shares no longer unseal: ${old.text} ${wrong.text}`);
      await unseal(node, rekeyed, 2);
      assert.equal((await call(node, 'GET', 'sys/seal-status')).body.sealed, false);
    }
    keys = rekeyed;
  });

  it('a rekey with verification: shares and verification on different nodes; the new shares count on every node', async () => {
    // The rekey above sealed the leader of then: another may lead now.
    leader = await until('a leader', () => leaderOf(nodes), 20_000);
    const [a, b] = nodes.filter((n) => n !== leader) as [Node, Node];
    const init = await call(a, 'PUT', 'sys/rekey/init', {
      secret_shares: 4,
      secret_threshold: 2,
      require_verification: true,
    });
    assert.equal(init.status, 200, init.text);
    const { nonce } = init.body;
    await call(b, 'PUT', 'sys/rekey/update', { key: keys[0], nonce });
    const done = await call(leader, 'PUT', 'sys/rekey/update', { key: keys[1], nonce });
    assert.equal(done.body.complete, true, done.text);
    const rekeyed = done.body.keys as string[];
    const vnonce = done.body.verification_nonce as string;
    assert.equal((await call(a, 'GET', 'sys/rekey/verify')).body.nonce, vnonce);
    assert.equal((await call(b, 'GET', 'sys/seal-status')).body.n, 3, 'nothing changes before the verification');
    assert.equal((await call(b, 'PUT', 'sys/rekey/verify', { key: rekeyed[3], nonce: vnonce })).body.progress, 1);
    const verified = await call(a, 'PUT', 'sys/rekey/verify', { key: rekeyed[0], nonce: vnonce });
    assert.deepEqual(verified.body, { nonce: vnonce, complete: true });
    for (const node of nodes) {
      await until(
        `${node.name} has the new seal configuration`,
        async () => ((await call(node, 'GET', 'sys/seal-status')).body.n === 4 ? true : undefined),
        2000,
      );
    }
    keys = rekeyed;
  });

  it("the leader stepping down ends the attempt it held; the new leader's answers come through the others", async () => {
    // The rekey above sealed the leader of then: another may lead now.
    leader = await until('a leader', () => leaderOf(nodes), 20_000);
    const started = await call(leader, 'PUT', 'sys/generate-root/attempt', {});
    assert.equal(started.status, 200, started.text);
    assert.equal((await leader.api.call('PUT', 'sys/step-down')).status, 204);
    const next = await until(
      'another leader',
      async () => {
        const found = await leaderOf(nodes);
        return found && found !== leader ? found : undefined;
      },
      20_000,
    );
    for (const node of nodes) {
      const status = await call(node, 'GET', 'sys/generate-root/attempt');
      assert.equal(status.status, 200, `${node.name}: ${status.text}`);
      assert.equal(status.body.started, false, `${node.name} sees no attempt once ${next.name} leads`);
    }
    const again = await call(leader, 'PUT', 'sys/generate-root/attempt', {});
    assert.equal(again.status, 200, again.text);
    assert.equal((await call(next, 'GET', 'sys/generate-root/attempt')).body.nonce, again.body.nonce);
    assert.equal((await call(leader, 'DELETE', 'sys/generate-root/attempt')).status, 204);

    // The node that stepped down leads again (the others step down until it does, once its pause is over): it
    // kept nothing of the attempt it held then.
    const first = leader;
    const back = await until(
      `${first.name} leading again`,
      async () => {
        const now = await leaderOf(nodes);
        if (now === first) return now;
        if (now) await now.api.call('PUT', 'sys/step-down');
        await new Promise((resolve) => setTimeout(resolve, 500));
        return undefined;
      },
      40_000,
    );
    assert.equal((await call(back, 'GET', 'sys/generate-root/attempt')).body.started, false);
  });
});

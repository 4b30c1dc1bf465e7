import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import { sealCeremonyCall } from '../src/core/ceremony-forwarding.js';
import { freePort, initAndUnseal, injectJson, until } from './support.js';

/** The context the leader seals its answers under (src/core/ceremony-forwarding.ts). */
const REPLY_CONTEXT = '\u0000cofre/key-ceremony/reply/v1';

/**
 * A forwarded generate-root or rekey call that reaches a node which does not lead. The leader may have changed
 * since the forwarding node looked it up (a step-down, a lost lock). That node must refuse the call: running it
 * would start a second attempt, which the leader's shares never reach. A sealed call can only be made inside a node
 * (the barrier seals it), so two nodes run here in this process, on a real PostgreSQL, and the test seals the calls
 * with their barrier.
 */
describe('a forwarded key ceremony call on a node that does not lead', () => {
  let db: TestDatabase;
  const nodes: Cofre[] = [];

  const leads = async (node: Cofre) => (await injectJson(node, 'GET', 'sys/leader')).body.is_self === true;
  const run = async (node: Cofre, sealed: string) => {
    const reply = await node.core.runForwardedCeremony(sealed);
    const opened = node.core.barrier.decryptValue(REPLY_CONTEXT, Buffer.from(reply, 'base64'));
    return JSON.parse(opened.toString('utf8')) as { value?: Record<string, unknown>; error?: { status: number } };
  };

  before(async () => {
    db = await startPostgres();
    for (let i = 0; i < 2; i++) {
      // Listening, each at its api_addr: a call to the node that does not lead is forwarded to the leader.
      const port = await freePort();
      const node = await createCofre({
        storage: { type: 'postgresql', connectionUrl: db.url, table: 'ceremony_refusal' },
        apiAddr: `http://127.0.0.1:${port}`,
        logLevel: 'error',
      });
      await node.http.listen({ host: '127.0.0.1', port });
      nodes.push(node);
    }
    await initAndUnseal(nodes);
  });

  after(async () => {
    for (const node of nodes) await node.close().catch(() => undefined);
    await db?.stop();
  });

  it('is refused there and starts nothing; the same call on the leader runs', async () => {
    const leader = await until(
      'a leader',
      async () => {
        for (const node of nodes) if (await leads(node)) return node;
        return undefined;
      },
      15_000,
    );
    const other = nodes.find((n) => n !== leader)!;
    assert.equal(await leads(other), false);

    const refused = await run(other, sealCeremonyCall(other.core.barrier, { op: 'root.start', opts: {} }).sealed);
    assert.equal(refused.value, undefined, 'a node that does not lead ran the call');
    assert.equal(refused.error?.status, 503);
    for (const node of nodes) {
      const status = await injectJson(node, 'GET', 'sys/generate-root/attempt');
      assert.equal(status.body.started, false, JSON.stringify(status));
    }

    const ran = await run(leader, sealCeremonyCall(leader.core.barrier, { op: 'root.start', opts: {} }).sealed);
    assert.equal(ran.value?.started, true);
    await run(leader, sealCeremonyCall(leader.core.barrier, { op: 'root.cancel' }).sealed);
  });
});

// Two nodes of one store initialised at the same moment: before, both wrote a keyring, the later over the earlier,
// and the initialisation whose seal configuration committed handed out keys that could not open the store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import { openStorage } from '../src/storage/open.js';
import { injectJson } from './support.js';

describe('sys/init on two nodes at once', () => {
  let db: TestDatabase;
  const opened: Cofre[] = [];
  before(async () => {
    db = await startPostgres();
  });
  after(async () => {
    for (const node of opened) await node.close().catch(() => undefined);
    await db?.stop();
  });

  it('initialises the store once, with keys that open it on every node', async () => {
    for (let round = 0; round < 4; round++) {
      const table = `init_race_${round}`;
      const nodes: Cofre[] = [];
      for (let i = 0; i < 2; i++) {
        nodes.push(
          await createCofre({ storage: { type: 'postgresql', connectionUrl: db.url, table }, logLevel: 'fatal' }),
        );
      }
      opened.push(...nodes);
      const answers = await Promise.all(
        nodes.map((node) =>
          injectJson(node, 'PUT', 'sys/init', { payload: { secret_shares: 1, secret_threshold: 1 } }),
        ),
      );
      const won = answers.filter((a) => a.status === 200);
      assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(answers.map((a) => a.status))}`);
      const lost = answers.find((a) => a.status !== 200)!;
      assert.equal(lost.status, 400, JSON.stringify(lost.body));
      assert.match(
        JSON.stringify(lost.body),
        /being initialized by another request|already initialized|initialized \(or is being (restored|initialized)\) meanwhile/,
      );
      const key = (won[0]!.body.keys as string[])[0]!;
      for (const node of nodes) {
        const unsealed = await injectJson(node, 'PUT', 'sys/unseal', { payload: { key } });
        assert.equal(unsealed.status, 200, `round ${round}: ${JSON.stringify(unsealed.body)}`);
        assert.equal(unsealed.body.sealed, false);
      }
      const root = won[0]!.body.root_token as string;
      assert.equal((await injectJson(nodes[1]!, 'GET', 'auth/token/lookup-self', { token: root })).status, 200);
    }
  });

  it('a node that still reads the store as not initialised cannot initialise it after another did', async () => {
    // Before, the claim checked only other claims: a node that read "not initialised" just before another node's
    // init committed (and deleted its claim) took the claim and wrote its keyring over the store's.
    const table = 'init_race_stale';
    const first = await createCofre({
      storage: { type: 'postgresql', connectionUrl: db.url, table },
      logLevel: 'fatal',
    });
    opened.push(first);
    const init = await injectJson(first, 'PUT', 'sys/init', { payload: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    // The second node's first read of the seal configuration is from before that commit.
    const physical = await openStorage({ type: 'postgresql', connectionUrl: db.url, table });
    const get = physical.get.bind(physical);
    let stale = true;
    physical.get = async (key) => {
      if (key === 'core/seal-config' && stale) {
        stale = false;
        return undefined;
      }
      return get(key);
    };
    const second = await createCofre({
      storage: { type: 'postgresql', connectionUrl: db.url, table },
      physical,
      logLevel: 'fatal',
    });
    opened.push(second);
    const late = await injectJson(second, 'PUT', 'sys/init', { payload: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(late.status, 400, JSON.stringify(late.body));
    assert.match(JSON.stringify(late.body), /initialized \(or is being initialized\) meanwhile/);
    const key = (init.body.keys as string[])[0]!;
    for (const node of [first, second]) {
      const unsealed = await injectJson(node, 'PUT', 'sys/unseal', { payload: { key } });
      assert.equal(unsealed.status, 200, JSON.stringify(unsealed.body));
      assert.equal(unsealed.body.sealed, false, 'the store was initialised again over the first keys');
    }
  });
});

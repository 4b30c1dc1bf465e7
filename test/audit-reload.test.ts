import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import type { AuditSinkFactory } from '../src/core/audit-broker.js';
import { GENESIS } from '../src/core/audit-chain.js';
import { initAndUnseal, injectJson, until } from './support.js';

/**
 * An audit device of this test: it keeps its lines in memory and, when held, opens only once released, so the
 * window in which a node loads a device enabled on another node lasts as long as the test needs.
 */
class HeldDevices {
  readonly lines: string[] = [];
  opens = 0;
  private waiting: (() => void)[] = [];
  constructor(private held: boolean) {}

  release(): void {
    this.held = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  readonly factory: AuditSinkFactory = () => ({
    open: async () => {
      this.opens++;
      if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
      return GENESIS;
    },
    write: async (text) => {
      this.lines.push(...text.split('\n').filter((line) => line !== ''));
    },
    close: async () => undefined,
  });

  entries(path: string): string[] {
    return this.lines
      .map((line) => JSON.parse(line) as { type: string; request: { path: string } })
      .filter((entry) => entry.request.path === path)
      .map((entry) => entry.type);
  }
}

/**
 * Two nodes on one PostgreSQL store, in this process. A node hears of an audit device enabled on the other some
 * time after the enabling was answered, and then opens it. Before, a request it served while the device was opening
 * went unaudited: the node still had the old table (no device), though the enabling had been acknowledged.
 */
describe('an audit device enabled on one node, while another node is opening it', () => {
  let db: TestDatabase;
  const nodes: Cofre[] = [];
  const devices = [new HeldDevices(false), new HeldDevices(true)];
  let token = '';

  const inject = (node: Cofre, method: 'GET' | 'PUT', url: string, payload?: unknown) =>
    injectJson(node, method, url, { token, payload });

  before(async () => {
    db = await startPostgres();
    for (const device of devices) {
      nodes.push(
        await createCofre({
          storage: { type: 'postgresql', connectionUrl: db.url, table: 'audit_reload' },
          auditDevices: { held: device.factory },
          logLevel: 'error',
        }),
      );
    }
    ({ rootToken: token } = await initAndUnseal(nodes));
  });

  after(async () => {
    for (const node of nodes) await node.close().catch(() => undefined);
    await db?.stop();
  });

  it('holds the requests that node starts until the device is open, and the device records them', async () => {
    const [first, second] = nodes as [Cofre, Cofre];
    const [, opening] = devices as [HeldDevices, HeldDevices];
    assert.equal((await inject(first, 'PUT', 'sys/audit/held', { type: 'held' })).status, 204);
    await until('the second node opens the device', async () => (opening.opens > 0 ? true : undefined), 10_000);

    let answered = false;
    const request = inject(second, 'GET', 'auth/token/lookup-self').finally(() => (answered = true));
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(answered, false, 'the request was answered before the device it must be recorded by was open');
    } finally {
      opening.release();
    }
    assert.equal((await request).status, 200);
    assert.deepEqual(opening.entries('auth/token/lookup-self'), ['request', 'response']);
  });
});

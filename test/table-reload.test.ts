import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import { openStorage, type StorageAdapter } from '../src/storage/open.js';
import { initAndUnseal, injectJson, until } from './support.js';

/**
 * Two nodes on one PostgreSQL store, in this process. The second node's reads fail while the test says so (its
 * connection to the store refused, say) at the moment it hears that the first node disabled a mount. Before, once
 * its retries were spent, it went on serving by its old mount table: the disabled mount answered with its secret,
 * although the disabling had been acknowledged.
 */
describe('a mount disabled on one node, while another node cannot read the store', () => {
  let db: TestDatabase;
  const nodes: Cofre[] = [];
  let failing = false;
  /** How often the second node read its mount table from the store. */
  let mountTableReads = 0;
  let token = '';
  /** What the second node logged (warnings and worse). */
  const logLines: string[] = [];
  const storage = () => ({ type: 'postgresql' as const, connectionUrl: db.url, table: 'table_reload' });

  /** The store as the second node sees it: its reads fail while `failing`. */
  const flaky = (store: StorageAdapter): StorageAdapter =>
    new Proxy(store, {
      get(target, prop) {
        if (prop === 'get') {
          return (key: string) => {
            if (failing) return Promise.reject(new Error('connection refused (test)'));
            if (key === 'core/mounts') mountTableReads++;
            return target.get(key);
          };
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });

  const inject = (node: Cofre, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    injectJson(node, method, url, { token, payload });

  /** Until `node` has heard of the change, and its reload (with its retries, about two seconds) has failed. */
  const reloadGivenUp = async (node: Cofre): Promise<void> => {
    const held = await until(
      'the node hears of the change',
      async () => {
        const reloading = node.core.requestHold;
        return reloading ? { reloading } : undefined;
      },
      10_000,
    );
    await held.reloading.catch(() => undefined);
  };

  const mountKv = async (path: string): Promise<void> => {
    const res = await inject(nodes[0]!, 'POST', `sys/mounts/${path}`, { type: 'kv', options: { version: '2' } });
    assert.equal(res.status, 204);
  };

  /** Disables `path` through the first node while the second cannot read the store, until the second gives up. */
  const disableUnheard = async (path: string): Promise<void> => {
    failing = true;
    assert.equal((await inject(nodes[0]!, 'DELETE', `sys/mounts/${path}`)).status, 204);
    await reloadGivenUp(nodes[1]!);
  };

  before(async () => {
    db = await startPostgres();
    nodes.push(await createCofre({ storage: storage(), logLevel: 'error' }));
    nodes.push(
      await createCofre({
        storage: storage(),
        physical: flaky(await openStorage(storage())),
        logLevel: 'warn',
        logStream: new Writable({ write: (chunk: Buffer, _enc, done) => done(void logLines.push(chunk.toString())) }),
      }),
    );
    ({ rootToken: token } = await initAndUnseal(nodes));
  });

  after(async () => {
    failing = false;
    for (const node of nodes) await node.close().catch(() => undefined);
    await db?.stop();
  });

  it('refuses requests until it has loaded the tables again, then serves by the new ones', async () => {
    const [first, second] = nodes as [Cofre, Cofre];
    await mountKv('gone');
    assert.equal((await inject(first, 'POST', 'gone/data/db', { data: { password: 'hunter2' } })).status, 200);
    const served = await inject(second, 'GET', 'gone/data/db');
    assert.equal(served.status, 200, 'the second node serves the mount before it is disabled');

    await disableUnheard('gone');
    const refused = await inject(second, 'GET', 'gone/data/db');
    assert.equal(refused.status, 503);
    assert.match(JSON.stringify(refused.body), /cannot load the mount, audit and keyring tables/);
    assert.doesNotMatch(JSON.stringify(refused.body), /hunter2/);
    // Other paths too: the node cannot tell what is mounted, or which audit devices must record a request.
    assert.equal((await inject(second, 'GET', 'auth/token/lookup-self')).status, 503);
    // Its health check says so, for a load balancer to send requests elsewhere.
    const health = await inject(second, 'GET', 'sys/health');
    assert.equal(health.status, 503);
    assert.equal(health.body.sealed, false);
    assert.match(String(health.body.refusing_requests), /cannot load the mount, audit and keyring tables/);
    // The operator reads why in the log, with the store's error and no value.
    const warned = logLines.filter((line) => line.includes('refusing requests until they load'));
    assert.equal(warned.length, 1, logLines.join(''));
    assert.match(warned[0]!, /connection refused \(test\)/);
    assert.doesNotMatch(logLines.join(''), /hunter2/);

    // The store answers again, and no further change is announced: the next request loads every table first.
    failing = false;
    const after = await inject(second, 'GET', 'gone/data/db');
    assert.equal(after.status, 404);
    assert.doesNotMatch(JSON.stringify(after.body), /hunter2/);
    // Not served by the old table: a write would go into the storage of a mount that no longer exists.
    const written = await inject(second, 'POST', 'gone/data/other', { data: { password: 'lost' } });
    assert.equal(written.status, 404, 'the disabled mount took a write on the node that missed its disabling');
    assert.equal((await inject(second, 'GET', 'auth/token/lookup-self')).status, 200);
    const mounts = await inject(second, 'GET', 'sys/mounts');
    assert.equal(mounts.status, 200);
    assert.equal('gone/' in (mounts.body.data as Record<string, unknown>), false);
  });

  it('recovers through its health check alone, which a load balancer keeps calling', async () => {
    const second = nodes[1]!;
    await mountKv('probe');
    await disableUnheard('probe');
    assert.equal((await inject(second, 'GET', 'sys/health')).status, 503);
    failing = false;
    const readsBefore = mountTableReads;
    const health = await inject(second, 'GET', 'sys/health');
    assert.equal(health.status, 200);
    assert.equal('refusing_requests' in health.body, false);
    assert.equal(mountTableReads - readsBefore, 1, 'the health check loaded the tables');
    const mounts = await inject(second, 'GET', 'sys/mounts');
    assert.equal('probe/' in (mounts.body.data as Record<string, unknown>), false);
  });

  it('many requests at once while it cannot load them: all refused, and one load serves them all after', async () => {
    const second = nodes[1]!;
    await mountKv('again');
    await disableUnheard('again');
    const racing = await Promise.all(Array.from({ length: 40 }, () => inject(second, 'GET', 'again/data/x')));
    assert.deepEqual(new Set(racing.map((r) => r.status)), new Set([503]));
    failing = false;
    const readsBefore = mountTableReads;
    const later = await Promise.all(Array.from({ length: 40 }, () => inject(second, 'GET', 'sys/mounts')));
    assert.deepEqual(new Set(later.map((r) => r.status)), new Set([200]));
    assert.equal(mountTableReads - readsBefore, 1, 'the requests waiting for the tables share one load');
    for (const res of later) assert.equal('again/' in (res.body.data as Record<string, unknown>), false);
  });
});

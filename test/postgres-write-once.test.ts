// A write batch is never sent twice. Its connection may be lost after PostgreSQL committed it and before the answer
// came back: sent again, its checks (a KV write checks the metadata it read) failed on its own changes, so the caller
// was told of a conflict for a write that was applied, and a KV write made its version again.
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { isStorageConflict } from '../src/core/storage.js';
import { openPostgresStorage, type PostgresStorage } from '../src/storage/postgres.js';

/**
 * A TCP relay to PostgreSQL that can, for a moment, pass what clients send and drop what the server answers, and
 * then cut those connections: a commit that happened, whose answer never arrived.
 */
class AnswerDroppingRelay {
  private readonly links = new Set<Link>();
  private server: Server | undefined;
  private dropping = false;
  port = 0;

  async start(target: { host: string; port: number }): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      const link: Link = { client, upstream, dropping: this.dropping };
      this.links.add(link);
      const close = (): void => {
        this.links.delete(link);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', () => undefined);
      upstream.on('error', () => undefined);
      client.on('close', close);
      upstream.on('close', close);
      client.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => {
        if (!link.dropping) client.write(chunk);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Drops every answer on the connections open now (and made meanwhile) for `ms`, then cuts those connections. */
  async dropAnswersThenCut(ms: number): Promise<void> {
    this.dropping = true;
    for (const link of this.links) link.dropping = true;
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.dropping = false;
    for (const link of [...this.links]) if (link.dropping) link.client.destroy();
  }

  async stop(): Promise<void> {
    for (const link of this.links) link.client.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface Link {
  client: Socket;
  upstream: Socket;
  dropping: boolean;
}

describe('a PostgreSQL write whose answer is lost', () => {
  let db: TestDatabase;
  let store: PostgresStorage;
  const relay = new AnswerDroppingRelay();

  before(async () => {
    db = await startPostgres();
    await relay.start({ host: db.host, port: db.port });
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(relay.port);
    store = await openPostgresStorage({ connectionUrl: url.toString(), table: 'write_once', maxConnections: 2 });
  });
  after(async () => {
    await store?.close().catch(() => undefined);
    await relay.stop();
    await db?.stop();
  });

  it('is not sent again: its caller hears that it may have been applied, and it was', async () => {
    await store.put('k', Buffer.from('v1'));
    const cut = relay.dropAnswersThenCut(500);
    const outcome = await store
      .transaction([
        { op: 'check', key: 'k', value: Buffer.from('v1') },
        { op: 'put', key: 'k', value: Buffer.from('v2') },
      ])
      .then(
        () => 'applied',
        (err: Error) => err,
      );
    await cut;
    assert.ok(outcome instanceof Error, 'the write was answered although its answer was lost');
    assert.ok(!isStorageConflict(outcome), 'a write that was applied was reported as a conflict');
    assert.match(outcome.message, /it may or may not have been applied/);
    // PostgreSQL did commit it: the store holds the new value.
    const rows = await db.query("SELECT encode(value, 'escape') AS value FROM write_once WHERE key = 'k'");
    assert.deepEqual(rows, [{ value: 'v2' }]);
    // The store works on: the next write goes out on a new connection.
    await store.put('k', Buffer.from('v3'));
    assert.equal(Buffer.from((await store.get('k'))!).toString(), 'v3');
  });

  it('goes through after PostgreSQL ended the idle pooled connections (as a restart does)', async () => {
    // A regression test: the pool drops a connection as soon as the server's notice that it ended it arrives, so
    // writes never sent twice do not make the first write after a restart fail.
    await Promise.all(Array.from({ length: 2 }, () => store.get('k')));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    for (let round = 0; round < 5; round++) {
      await db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid() AND application_name NOT LIKE 'cofre listen%'",
      );
      await store.put('k', Buffer.from(`after restart ${round}`));
      assert.equal(Buffer.from((await store.get('k'))!).toString(), `after restart ${round}`);
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
  });
});

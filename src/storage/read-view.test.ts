import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../../scripts/test-databases.js';
import type { Storage } from '../core/storage.js';
import { restoreSnapshot, snapshotStream } from '../core/snapshot.js';
import { openPostgresStorage } from './postgres.js';
import { openSqliteStorage } from './sqlite.js';

/**
 * A snapshot taken while writers keep changing the store restores to a state that existed: every writer changes
 * two keys in one transaction, and in the restored store each pair still agrees. Without a read view (a key-by-key
 * walk of the live store) the pairs drift apart, which is why the adapters offer one.
 */
describe('snapshots under write load are consistent (read views)', () => {
  let db: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), 'cofre-read-view-test-'));
  before(async () => {
    db = await startPostgres();
  });
  after(async () => {
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const pairsAgree = async (source: Storage, target: Storage): Promise<void> => {
    const PAIRS = 200;
    for (let i = 0; i < PAIRS; i++) {
      await source.transaction([
        { op: 'put', key: `a/${i}`, value: Buffer.from('0') },
        { op: 'put', key: `b/${i}`, value: Buffer.from('0') },
      ]);
    }
    let stop = false;
    let round = 0;
    const writer = async (): Promise<void> => {
      while (!stop) {
        round++;
        const value = Buffer.from(String(round));
        const ops = Array.from({ length: PAIRS }, (_, i) => [
          { op: 'put' as const, key: `a/${i}`, value },
          { op: 'put' as const, key: `b/${i}`, value },
        ]).flat();
        await source.transaction(ops);
      }
    };
    const writing = writer();
    await new Promise((r) => setTimeout(r, 50));
    const chunks: Buffer[] = [];
    for await (const chunk of snapshotStream(source)) chunks.push(chunk as Buffer);
    stop = true;
    await writing;
    assert.ok(round > 1, 'the writer ran during the snapshot');
    await restoreSnapshot(Readable.from([Buffer.concat(chunks)]), target);
    for (let i = 0; i < PAIRS; i++) {
      const a = Buffer.from((await target.get(`a/${i}`))!).toString();
      const b = Buffer.from((await target.get(`b/${i}`))!).toString();
      assert.equal(a, b, `pair ${i} was captured half-way through a transaction`);
    }
  };

  it('SQLite (an online backup)', async () => {
    const source = openSqliteStorage(join(dir, 'source.db'));
    const target = openSqliteStorage(join(dir, 'target.db'));
    try {
      await pairsAgree(source, target);
    } finally {
      await source.close();
      await target.close();
    }
  });

  it('PostgreSQL (a REPEATABLE READ transaction)', async () => {
    const source = await openPostgresStorage({ connectionUrl: db.url, table: 'view_source' });
    const target = await openPostgresStorage({ connectionUrl: db.url, table: 'view_target' });
    try {
      await pairsAgree(source, target);
    } finally {
      await source.close();
      await target.close();
    }
  });

  it('a read view of a large SQLite store is taken while writes go on (the online backup does not start over for good)', async () => {
    // SQLite starts a backup over when another connection (the commit thread) commits between two of its steps:
    // before, 100 pages a step under steady writes never reached the end of a store of a few megabytes.
    const store = openSqliteStorage(join(dir, 'large.db'));
    try {
      const value = Buffer.alloc(8192, 1);
      for (let i = 0; i < 3000; i += 100) {
        await store.transaction(
          Array.from({ length: 100 }, (_, j) => ({ op: 'put' as const, key: `bulk/${i + j}`, value })),
        );
      }
      let stop = false;
      let writes = 0;
      const writing = (async () => {
        while (!stop) {
          await store.put(`hot/${writes % 10}`, Buffer.from(String(writes)));
          writes++;
        }
      })();
      try {
        const view = await Promise.race([
          store.openReadView(),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('the read view was not taken within 30 s')), 30_000).unref(),
          ),
        ]);
        assert.equal((await view.list('bulk/')).length, 3000);
        await view.release();
        assert.ok(writes > 10, `only ${writes} writes ran meanwhile`);
      } finally {
        stop = true;
        await writing;
      }
    } finally {
      await store.close();
    }
  });
});

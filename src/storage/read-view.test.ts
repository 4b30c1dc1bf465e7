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
});

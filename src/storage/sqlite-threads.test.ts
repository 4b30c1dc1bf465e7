import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { MessageChannel, Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { holdFile } from './sqlite.js';
import { SqliteThreadStorage } from './sqlite-threads.js';
import { openStoreFile } from './sqlite-writer.js';
import { threadScript } from './thread-script.js';
import { bytes, text } from './test-harness.js';

/**
 * Two server threads' views of one file through one commit thread: this thread writes, a worker thread reads. The
 * worker blocks its event loop while the write is acknowledged, so any change it knows afterwards was delivered by
 * catchUp alone, synchronously, as a request starts.
 */
describe('SqliteThreadStorage', () => {
  let dir: string;
  let lock: Database.Database;
  let committer: Worker;
  let writer: SqliteThreadStorage;
  let reader: Worker;
  const control = new SharedArrayBuffer(4);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-sqlite-threads-'));
    const file = path.join(dir, 'cofre.db');
    lock = holdFile(file);
    openStoreFile(file).close();
    const changeCounter = new SharedArrayBuffer(4);
    const [a, b] = [new MessageChannel(), new MessageChannel()];
    committer = new Worker(threadScript(import.meta.url, 'sqlite-commit-thread'), {
      workerData: { file, clients: [a.port1, b.port1], changeCounter },
      transferList: [a.port1, b.port1],
    });
    writer = new SqliteThreadStorage({ file, port: a.port2, changeCounter, index: 0, threads: 2 });
    reader = new Worker(threadScript(import.meta.url, 'sqlite-threads.fixture'), {
      workerData: { file, port: b.port2, changeCounter, control },
      transferList: [b.port2],
    });
    assert.equal((await once(reader, 'message'))[0], 'ready');
  });

  after(async () => {
    reader.postMessage('close');
    await once(reader, 'exit');
    await writer.close();
    committer.postMessage('close');
    await once(committer, 'exit');
    lock.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("hands a thread another thread's acknowledged change at its next catchUp, without its event loop", async () => {
    for (let round = 0; round < 5; round++) {
      reader.postMessage('block');
      assert.equal((await once(reader, 'message'))[0], 'blocking');
      await writer.transaction([
        { op: 'put', key: `k${round}`, value: bytes('v') },
        { op: 'delete', key: 'gone' },
      ]);
      const flag = new Int32Array(control);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      const [report] = (await once(reader, 'message')) as [{ beforeCatchUp: string[]; afterCatchUp: string[] }];
      assert.deepEqual(report.beforeCatchUp, [], 'nothing arrives while the thread is blocked');
      assert.deepEqual(report.afterCatchUp, [`k${round}`, 'gone']);
    }
  });

  it('tells the writer nothing of its own writes, and a reader sees them committed', async () => {
    const heard: string[] = [];
    await writer.watchChanges((keys) => heard.push(...(keys ?? [])));
    await writer.put('own', bytes('mine'));
    writer.catchUp();
    assert.deepEqual(heard, []);
    assert.equal(text(await writer.get('own')), 'mine');
  });

  it('names the first thread leader and every thread as a node', async () => {
    let elected = 0;
    await writer.campaign('http://x', { onElected: () => elected++, onLost: () => undefined });
    assert.equal(elected, 1);
    assert.deepEqual(
      (await writer.nodes()).map((n) => [n.nodeId, n.leader]),
      [
        ['thread-0', true],
        ['thread-1', false],
      ],
    );
  });
});

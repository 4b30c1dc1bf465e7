import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { chainJson, chainLine, GENESIS, verifyLines } from '../core/audit-chain.js';
import { startThread } from '../storage/thread-script.js';
import { ChainCell } from './chain-cell.js';
import { fileSink } from './file.js';

describe('audit chain cell', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-chain-cell-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('chainJson gives the very line chainLine does', () => {
    const state = { seq: 41, prev: 'ab'.repeat(32) };
    const entry = { time: 't', type: 'request', nested: { a: [1, 'two'] }, gone: undefined };
    assert.deepEqual(chainJson(JSON.stringify(entry), state), chainLine(entry, state));
    assert.equal(chainJson('{}', GENESIS).line, '{"chain":{"seq":1,"prev":""}}');
    assert.throws(() => chainJson('[1]', GENESIS), /JSON object/);
  });

  it('keeps the chain state it is given, across threads', () => {
    const cell = ChainCell.create({ seq: 7, prev: 'cd'.repeat(32) });
    const seen = ChainCell.of(cell.buffer);
    assert.deepEqual(seen.state, { seq: 7, prev: 'cd'.repeat(32) });
    seen.state = GENESIS;
    assert.deepEqual(cell.state, GENESIS);
    const generation = seen.generation;
    assert.equal(cell.cutOwed(generation), undefined);
    cell.oweCut(12, generation);
    assert.equal(seen.cutOwed(generation), 12);
    cell.reopenAll();
    assert.equal(seen.generation, generation + 1);
    // Owed in the file the writers had open then, not in the one they open next.
    assert.equal(seen.cutOwed(generation + 1), undefined);
    assert.equal(seen.cutOwed(generation), 12);
    seen.cutMade();
    assert.equal(cell.cutOwed(generation), undefined);
    assert.throws(() => (cell.state = { seq: 1, prev: 'short' }), /SHA-256/);
  });

  it('two threads and this one append to one file under its lock: one unbroken chain, every entry once', async () => {
    const real = path.join(dir, 'shared.log');
    const cell = ChainCell.create(GENESIS);
    const count = 400;
    const workers = ['a', 'b'].map((writer) =>
      startThread(import.meta.url, 'chain-cell.fixture', { workerData: { real, cell: cell.buffer, count, writer } }),
    );
    const done = workers.map((w) => once(w, 'message'));
    const own = fileSink(
      { file_path: real },
      {},
      { take: async () => ({ real, cell: cell.buffer }), give: async () => {} },
    );
    await own.open();
    for (let i = 0; i < count; i += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, j) =>
          own.writeEntry!({ time: new Date().toISOString(), type: 'request', writer: 'main', n: i + j }),
        ),
      );
    }
    await own.close();
    await Promise.all(done);
    await Promise.all(workers.map((w) => w.terminate()));
    const lines = fs.readFileSync(real, 'utf8').split('\n');
    const result = verifyLines(lines);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.lines, 3 * count);
    const seen = new Set(
      lines.filter(Boolean).map((l) => {
        const e = JSON.parse(l) as { writer: string; n: number };
        return `${e.writer}:${e.n}`;
      }),
    );
    assert.equal(seen.size, 3 * count);
    assert.deepEqual(cell.state.seq, 3 * count);
  });

  it('a device on its own chain continues the file it opens', async () => {
    const real = path.join(dir, 'shared.log');
    const sink = fileSink({ file_path: real });
    await sink.open();
    await sink.writeEntry!({ time: new Date().toISOString(), type: 'response', writer: 'later' });
    await sink.close();
    const result = verifyLines(fs.readFileSync(real, 'utf8').split('\n'));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.lines, 3 * 400 + 1);
  });
});

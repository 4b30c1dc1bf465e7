import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { verifyLines } from '../core/audit-chain.js';
import { fileSink } from './file.js';

/** The page cache's data waiting to be written back, machine-wide (Linux). */
const dirtyBytes = (): number =>
  Number(/^Dirty:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;

describe('audit file write-back', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cofre-audit-writeback-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps little of a fast-growing log waiting in the page cache, and every line intact', async () => {
    const file = path.join(dir, 'audit.log');
    const sink = fileSink({ file_path: file });
    await sink.open();
    const before = dirtyBytes();
    const filler = 'x'.repeat(64 * 1024);
    const MiB = 1024 * 1024;
    // 64 MiB in an instant: without write-back the kernel would hold all of it for 30 s (on a machine whose dirty
    // thresholds are above that; on one below them, or a file system without a page cache of dirty pages, this
    // test cannot tell the difference and passes either way).
    for (let i = 0; i < 1024; i++) await sink.writeEntry!({ time: new Date().toISOString(), type: 'request', filler });
    await sleep(300); // the last write-back started
    const grown = dirtyBytes() - before;
    await sink.close();
    assert.ok(grown < 24 * MiB, `the page cache holds ${Math.round(grown / MiB)} MiB more dirty data`);
    const result = verifyLines(fs.readFileSync(file, 'utf8').split('\n'));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.lines, 1024);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { createOnce } from './create-once.js';

describe('createOnce', () => {
  const dir = mkdtempSync(join(tmpdir(), 'create-once-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('makes the value once; callers racing to make it all get the one stored', async () => {
    const storage = openSqliteStorage(join(dir, 'race.db'));
    try {
      let made = 0;
      const make = () => Buffer.from(`value-${++made}`);
      // Each caller reads "none" before any commits: all make one, the first commit wins.
      const values = await Promise.all(Array.from({ length: 8 }, () => createOnce(storage, 'salt', make)));
      assert.equal(made, 8, 'every caller found none and made one');
      const stored = Buffer.from((await storage.get('salt'))!).toString();
      for (const value of values) assert.equal(Buffer.from(value).toString(), stored);
      assert.equal(Buffer.from(await createOnce(storage, 'salt', make)).toString(), stored);
      assert.equal(made, 8, 'a stored value is not made again');
    } finally {
      await storage.close();
    }
  });
});

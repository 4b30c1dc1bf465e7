import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Storage } from '../../core/storage.js';
import { jsonBytes } from '../../core/storage-view.js';
import { openSqliteStorage } from '../../storage/sqlite.js';
import { CONFIG_KEY, KvState, KvStore } from './store.js';

describe('KV config cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a read that another node's change overtook is not cached", async () => {
    const sqlite = openSqliteStorage(join(dir, 'config.db'));
    try {
      await sqlite.put(CONFIG_KEY, jsonBytes({ max_versions: 3 }));
      // The read of the config is held until the other node's change (written, and heard) is in.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const storage: Storage = Object.create(sqlite, {
        get: {
          value: async (key: string) => {
            const value = await sqlite.get(key);
            if (key === CONFIG_KEY) await held;
            return value;
          },
        },
      });
      const state = new KvState();
      const cached = () => state.config;
      const reading = new KvStore(storage, state).config();
      await sqlite.put(CONFIG_KEY, jsonBytes({ max_versions: 7 }));
      state.forgetConfig();
      release();
      assert.equal((await reading).max_versions, 3, 'the read answers what it read');
      assert.equal(cached(), undefined, 'but does not cache it past the change it raced');
      assert.equal((await new KvStore(sqlite, state).config()).max_versions, 7);
      assert.equal(cached()?.max_versions, 7);
    } finally {
      await sqlite.close();
    }
  });
});

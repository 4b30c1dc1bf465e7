import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSqliteStorage } from '../../storage/sqlite.js';
import { KEY_PREFIX, TransitKeys } from './keys.js';
import { decryptWith, encryptWith } from './use-key.js';

/** The decoded-key cache: what a seal, an unmount and another node's change must drop. */
describe('TransitKeys cache', () => {
  it('is emptied by clear() (seal, unmount) and by invalidate() of a key, and reloads from storage', async () => {
    const storage = await openSqliteStorage(':memory:');
    try {
      const keys = new TransitKeys(storage);
      const { key } = await keys.getOrCreate('k', 'aes256-gcm96');
      const sealed = encryptWith(key, Buffer.from('x'), Buffer.alloc(0)).ciphertext;
      assert.equal(await keys.get('k'), key, 'served from the cache');
      assert.equal(keys.cached, 1);

      keys.clear();
      assert.equal(keys.cached, 0, 'no decoded key is held after clear()');
      const reloaded = (await keys.get('k'))!;
      assert.notEqual(reloaded, key);
      assert.equal(decryptWith(reloaded, sealed, Buffer.alloc(0)).toString(), 'x', 'the same key, from storage');

      await keys.getOrCreate('other', 'chacha20-poly1305');
      keys.invalidate(`${KEY_PREFIX}k`);
      assert.equal(keys.cached, 1, 'only the changed key is dropped');
      keys.invalidate('unrelated/key');
      assert.equal(keys.cached, 1);
    } finally {
      await storage.close();
    }
  });

  it('a read that raced an invalidation does not cache what it read before it', async () => {
    const storage = await openSqliteStorage(':memory:');
    try {
      const keys = new TransitKeys(storage);
      await keys.getOrCreate('k', 'aes256-gcm96');
      keys.clear();
      const reading = keys.get('k');
      keys.invalidate(`${KEY_PREFIX}k`);
      await reading;
      assert.equal(keys.cached, 0);
    } finally {
      await storage.close();
    }
  });
});

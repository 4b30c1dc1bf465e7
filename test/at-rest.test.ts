import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startServer } from './support.js';

/** Looks for a needle in a file as UTF-8 and as it would appear JSON-escaped or base64-encoded. */
function leaks(file: string, needle: string): boolean {
  if (!existsSync(file)) return false;
  const bytes = readFileSync(file);
  const forms = [needle, JSON.stringify(needle).slice(1, -1), Buffer.from(needle).toString('base64').slice(0, 16)];
  return forms.some((f) => bytes.includes(Buffer.from(f)));
}

describe('nothing readable at rest', () => {
  it('the SQLite file and its WAL hold no secret value, token or accessor', async () => {
    const srv = await startServer({ dir: undefined });
    const secrets = ['s3cr3t-Pa55w0rd-a1b2c3', 'api-key-ZXCVBNMASDFGHJKL', 'kv1-value-QWERTYUIOP'];
    try {
      await srv.api.call('POST', 'secret/data/db', { body: { data: { password: secrets[0], user: 'app' } } });
      await srv.api.call('POST', 'secret/data/db', { body: { data: { password: secrets[1] } } });
      await srv.api.call('POST', 'sys/mounts/kv1', { body: { type: 'kv' } });
      await srv.api.call('PUT', 'kv1/thing', { body: { value: secrets[2] } });
      const child = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
      assert.equal(child.status, 200, child.text);
      const tokens = [srv.rootToken, child.body.auth.client_token as string, child.body.auth.accessor as string];
      // Reads prove the values are really there, so a pass is not a missing write.
      const read = await srv.api.call('GET', 'secret/data/db?version=1');
      assert.equal(read.body.data.data.password, secrets[0]);

      const files = ['cofre.db', 'cofre.db-wal'].map((f) => join(srv.dir, f));
      assert.ok(existsSync(files[0]!));
      for (const file of files) {
        for (const needle of [...secrets, ...tokens])
          assert.equal(leaks(file, needle), false, `${needle} found in ${file}`);
      }
      // The same holds once the WAL is checkpointed into the main file.
      await srv.cofre.close();
      for (const needle of [...secrets, ...tokens])
        assert.equal(leaks(files[0]!, needle), false, `${needle} in checkpointed db`);
    } finally {
      await srv.stop().catch(() => undefined);
    }
  });
});

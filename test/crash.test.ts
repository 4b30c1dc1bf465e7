import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { apiClient, freePort, spawnDevServer, tempDir } from './support.js';

/**
 * SIGKILL in the middle of a stream of KV writes: every write the server acknowledged must read back after a
 * restart. Writes run 16 at a time so group commit is exercised.
 */
describe('crash safety', () => {
  it('acknowledged writes survive SIGKILL', async () => {
    const dir = tempDir('crash');
    try {
      const port = await freePort();
      const first = await spawnDevServer(dir, port, 'root');
      const api = apiClient(first.url, 'root');
      const acknowledged = new Map<string, string>();
      let stop = false;
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const key = `w${w}-${i}`;
          const value = `v-${w}-${i}-${Math.random()}`;
          try {
            const res = await api.call('POST', `secret/data/crash/${key}`, { body: { data: { value } } });
            if (res.status === 200) acknowledged.set(key, value);
          } catch {
            return; // connection reset by the kill
          }
        }
      };
      const writers = Array.from({ length: 16 }, (_, w) => writer(w));
      while (acknowledged.size < 300) await new Promise((r) => setTimeout(r, 20));
      const exited = new Promise((r) => first.child.once('exit', r));
      first.child.kill('SIGKILL');
      stop = true;
      await Promise.all(writers);
      await exited;
      assert.ok(acknowledged.size >= 300);

      const second = await spawnDevServer(dir, port, 'root');
      try {
        const api2 = apiClient(second.url, 'root');
        const missing: string[] = [];
        for (const [key, value] of acknowledged) {
          const res = await api2.call('GET', `secret/data/crash/${key}`);
          if (res.status !== 200 || res.body.data.data.value !== value) missing.push(key);
        }
        assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
      } finally {
        second.child.kill('SIGKILL');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

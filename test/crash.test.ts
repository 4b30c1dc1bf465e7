import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { apiClient, freePort, lostWrites, spawnDevServer, startCrashWriters, tempDir } from './support.js';

/**
 * SIGKILL in the middle of a stream of KV writes: every write the server acknowledged must read back after a
 * restart. Writes run 16 at a time so group commit is exercised.
 */
describe('crash safety', () => {
  // With --workers 2, two server threads write through one commit thread, which dies with the process.
  for (const [name, extraArgs] of [
    ['one server thread', []],
    ['two server threads (--workers 2)', ['--workers', '2']],
  ] as const) {
    it(`acknowledged writes survive SIGKILL: ${name}`, async () => {
      const dir = tempDir('crash');
      try {
        const port = await freePort();
        const first = await spawnDevServer(dir, port, 'root', [...extraArgs]);
        const api = apiClient(first.url, 'root');
        const { acknowledged, stop } = startCrashWriters(api);
        while (acknowledged.size < 300) await new Promise((r) => setTimeout(r, 20));
        const exited = new Promise((r) => first.child.once('exit', r));
        first.child.kill('SIGKILL');
        await stop();
        await exited;
        assert.ok(acknowledged.size >= 300);

        const second = await spawnDevServer(dir, port, 'root', [...extraArgs]);
        try {
          const api2 = apiClient(second.url, 'root');
          const missing = await lostWrites(api2, acknowledged);
          assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
        } finally {
          second.child.kill('SIGKILL');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

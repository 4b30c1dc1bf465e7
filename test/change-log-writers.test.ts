/**
 * Every acknowledged write has its change event when two server threads take writes at once: the threads hand
 * every write that makes a change event to the first one (src/workers/write-forwarding.ts), so one writer appends
 * to the change log. Writers that each pick indexes lose events (COFRE_FORWARD_WRITES=off, or several nodes on
 * PostgreSQL: bench/change-log-writers.ts, docs/architecture.md "Change stream"), which this test shows as missing.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { missingChanges, writeFromTwoGroups } from './change-log-writers.js';
import { spawnThreadedDevServer, tempDir } from './support.js';

test('two server threads writing at once: every acknowledged KV write is in the change stream', async (t) => {
  const dir = tempDir('change-log-writers');
  const server = await spawnThreadedDevServer(dir);
  t.after(() => {
    server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const acknowledged = await writeFromTwoGroups({
    urls: [server.url],
    token: 'root',
    keys: 200,
    rounds: 10,
    concurrency: 4,
  });
  assert.equal(acknowledged.length, 4000);
  assert.deepEqual(await missingChanges(server.url, 'root', acknowledged), []);
});

/**
 * Every acknowledged write has its change event when two server threads take writes at once: the threads hand
 * every write to the first one (src/workers/write-forwarding.ts), so one writer appends to the change log. Each
 * writer picking indexes of its own loses events (COFRE_FORWARD_WRITES=off, or several nodes on PostgreSQL:
 * bench/change-log-writers.ts, docs/architecture.md "Change stream"), which this test would show as missing ones.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { replayChanges, writeFromTwoGroups } from './change-log-writers.js';
import { freePort, spawnDevServer, tempDir } from './support.js';

test('two server threads writing at once: every acknowledged KV write is in the change stream', async () => {
  const server = await spawnDevServer(tempDir('change-log-writers'), await freePort(), 'root', ['--workers', '2']);
  after(() => void server.child.kill('SIGKILL'));
  for (let i = 0; i < 200 && !server.output().includes('Server threads: 2'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(server.output(), /Server threads: 2/);
  const acknowledged = await writeFromTwoGroups({
    urls: [server.url],
    token: 'root',
    keys: 100,
    rounds: 5,
    concurrency: 16,
  });
  assert.equal(acknowledged.length, 1000);
  const seen = await replayChanges(server.url, 'root');
  assert.deepEqual(
    acknowledged.filter((change) => !seen.has(change)),
    [],
  );
});

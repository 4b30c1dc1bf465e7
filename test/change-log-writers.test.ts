/**
 * Every acknowledged write has its change event when two writers append to the change log at once: the store gives
 * each entry its index in commit order (the storage port's append op). Before it did, each writer picked the next
 * index itself, and two PostgreSQL nodes lost a quarter to a third of their events (bench/README.md, "The change
 * log with two writers"); server threads lost as many when each served its own writes.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { startPostgres } from '../scripts/test-databases.js';
import { missingChanges, writeFromTwoGroups } from './change-log-writers.js';
import { startNode, unseal, type Node } from './cluster-support.js';
import { spawnThreadedDevServer, tempDir } from './support.js';

/** 200 secrets written 10 times by each of two groups, 4 requests at a time per group: 4,000 writes. */
async function writeAndReplay(urls: string[], token: string): Promise<void> {
  const acknowledged = await writeFromTwoGroups({ urls, token, keys: 200, rounds: 10, concurrency: 4 });
  assert.equal(acknowledged.length, 4000);
  for (const url of urls) assert.deepEqual(await missingChanges(url, token, acknowledged), [], url);
}

for (const forwarding of [true, false]) {
  test(`two server threads writing at once (forwarding ${forwarding ? 'on' : 'off'}): every write is in the stream`, async (t) => {
    const dir = tempDir('change-log-writers');
    const server = await spawnThreadedDevServer(dir, forwarding);
    t.after(() => {
      server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    await writeAndReplay([server.url], 'root');
  });
}

test('two PostgreSQL nodes writing at once: every write is in the stream of each', async (t) => {
  const dir = tempDir('change-log-writers-pg');
  const db = await startPostgres({ durable: true });
  const nodes: Node[] = [];
  t.after(async () => {
    for (const node of nodes) await node.kill('SIGKILL');
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const name of ['n1', 'n2']) nodes.push(await startNode(dir, name, db.url, { built: true }));
  const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
  for (const node of nodes) await unseal(node, init.body.keys, 1);
  await writeAndReplay(
    nodes.map((n) => n.url),
    init.body.root_token as string,
  );
});

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { startNode, unseal, type Node } from './cluster-support.js';
import { changeOf, replayEvents } from './event-replay.js';
import { apiClient, freePort, spawnDevServer, startCrashWriters, tempDir, until, type Api } from './support.js';

/**
 * A change and its change-log entry are one commit (issue 13, item 6). Writers keep writing new KV v2 secrets while
 * the server is SIGKILLed at a random moment, five times over; after each restart every secret the store holds,
 * acknowledged or not, has its `write` event in the log. Before the two were one commit, the entry was a second
 * commit after the write's own, so the last writes before a kill were stored without their events: a subscriber
 * that resumed from its index never heard of them.
 */
const ROUNDS = 5;

interface Round {
  start(): Promise<{ api: Api; token: string; kill(): Promise<void> }>;
}

async function crashRounds(round: Round): Promise<void> {
  for (let n = 0; n < ROUNDS; n++) {
    const server = await round.start();
    const { acknowledged, stop } = startCrashWriters(server.api);
    await until('100 writes acknowledged', async () => (acknowledged.size >= 100 ? true : undefined), 30_000);
    // A random moment, so the kill lands at a different point of the commits each round.
    await sleep(Math.floor(Math.random() * 200));
    await server.kill();
    await stop();

    const after = await round.start();
    try {
      const stored = await storedKeys(after.api);
      const announced = await announcedPaths(after.api.url, after.token);
      for (const key of acknowledged.keys()) assert.ok(stored.includes(key), `acknowledged write ${key} was lost`);
      const silent = stored.filter((key) => !announced.has(`secret/crash/${key}`));
      assert.deepEqual(silent, [], `round ${n}: ${silent.length} of ${stored.length} stored secrets have no event`);
    } finally {
      await after.kill();
    }
  }
}

async function storedKeys(api: Api): Promise<string[]> {
  const res = await api.call('LIST', 'secret/metadata/crash/');
  assert.equal(res.status, 200, res.text);
  return res.body.data.keys as string[];
}

/** The paths of every `write` event the log holds: the stream from index 0 up to the index its hello names. */
async function announcedPaths(url: string, token: string): Promise<Set<string>> {
  const paths = new Set<string>();
  let last: number | undefined;
  await replayEvents(url, token, {
    frame: (frame) => {
      if (frame.event === 'hello') last = (frame.data as { index: number }).index;
      const change = changeOf(frame);
      if (change?.kind === 'write') paths.add(change.path);
      return last !== undefined && (last === 0 || (change?.index ?? 0) >= last);
    },
  });
  return paths;
}

describe('a change and its change-log entry are one commit', () => {
  it('SQLite: after SIGKILLs during writes, every stored secret has its event', async () => {
    const dir = tempDir('change-log-crash');
    try {
      const port = await freePort();
      await crashRounds({
        async start() {
          const server = await spawnDevServer(dir, port, 'root');
          const exited = new Promise((resolve) => server.child.once('exit', resolve));
          return {
            api: apiClient(server.url, 'root'),
            token: 'root',
            async kill() {
              server.child.kill('SIGKILL');
              await exited;
            },
          };
        },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('PostgreSQL', () => {
    let db: TestDatabase;
    const dir = tempDir('change-log-crash-pg');
    let keys: string[] = [];
    let root = '';
    let nodes = 0;
    const running: Node[] = [];

    before(async () => {
      db = await startPostgres();
      const node = await startNode(dir, 'init', db.url);
      running.push(node);
      const init = await node.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
      assert.equal(init.status, 200, init.text);
      keys = init.body.keys;
      root = init.body.root_token;
      await unseal(node, keys, 1);
      const mounted = await apiClient(node.url, root).call('POST', 'sys/mounts/secret', {
        body: { type: 'kv', options: { version: '2' } },
      });
      assert.equal(mounted.status, 204, mounted.text);
      await node.kill('SIGKILL');
    });

    after(async () => {
      await Promise.all(running.map((node) => node.kill('SIGKILL')));
      await db?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('after SIGKILLs during writes, every stored secret has its event', async () => {
      await crashRounds({
        async start() {
          const node = await startNode(dir, `n${nodes++}`, db.url);
          running.push(node);
          await unseal(node, keys, 1);
          return { api: apiClient(node.url, root), token: root, kill: () => node.kill('SIGKILL') };
        },
      });
    });
  });
});

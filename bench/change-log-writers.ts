// Does every write reach the change stream when two writers append to the change log at once? Two groups of
// writers each write their own KV v2 secrets (ROUNDS versions of KEYS secrets, CONC requests at a time per group);
// then a `sys/cofre/events?index=0` stream on each server replays the log from the store, and every version that a
// write acknowledged must be in it.
//
//   npm run build && node --import tsx bench/change-log-writers.ts                  # two nodes on PostgreSQL
//   npm run build && node --import tsx bench/change-log-writers.ts --sqlite-workers # one server, two threads
//
// Environment: KEYS (200), ROUNDS (10), CONC (2), SUBSCRIBED (1: a stream open on each server during the writes);
// COFRE_FORWARD_WRITES=off has each server thread serve its own writes. Prints, per server, how many acknowledged
// versions the stream lacks and which they were; exits 1 if any is missing. Results in bench/README.md ("The change
// log with two writers").
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startPostgres } from '../scripts/test-databases.js';
import { startNode, unseal, type Node } from '../test/cluster-support.js';
import { missingChanges, writeFromTwoGroups } from '../test/change-log-writers.js';
import { spawnThreadedDevServer, tempDir } from '../test/support.js';

const { values: opts } = parseArgs({ options: { 'sqlite-workers': { type: 'boolean', default: false } } });
const KEYS = Number(process.env.KEYS ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const CONC = Number(process.env.CONC ?? 2);
const log = (msg: string) => process.stderr.write(`[change-log] ${msg}\n`);

interface Setup {
  /** One URL per writer group: a node each, or the one server's for both. */
  urls: string[];
  token: string;
  stop(): Promise<void>;
}

async function onPostgres(dir: string): Promise<Setup> {
  const db = await startPostgres({ durable: true });
  const nodes: Node[] = [];
  for (const name of ['n1', 'n2']) nodes.push(await startNode(dir, name, db.url, { built: true }));
  const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
  for (const node of nodes) await unseal(node, init.body.keys, 1);
  return {
    urls: nodes.map((n) => n.url),
    token: init.body.root_token as string,
    stop: async () => {
      for (const node of nodes) await node.kill('SIGKILL');
      await db.stop();
    },
  };
}

async function onSqliteWorkers(dir: string): Promise<Setup> {
  // COFRE_FORWARD_WRITES=off in this script's environment: each thread serves its own writes.
  const server = await spawnThreadedDevServer(join(dir, 'cofre'), process.env.COFRE_FORWARD_WRITES !== 'off');
  return { urls: [server.url], token: 'root', stop: async () => void server.child.kill('SIGKILL') };
}

/** A stream of live events open on `url`, read and dropped, until the returned function is called. */
function subscribe(url: string, token: string): () => void {
  const stop = new AbortController();
  void fetch(`${url}/v1/sys/cofre/events`, { headers: { 'x-vault-token': token }, signal: stop.signal })
    .then(async (res) => {
      for await (const _ of res.body!);
    })
    .catch(() => undefined);
  return () => stop.abort();
}

const dir = tempDir('change-log-writers');
const setup = opts['sqlite-workers'] ? await onSqliteWorkers(dir) : await onPostgres(dir);
let missingAnywhere = 0;
try {
  const acknowledged = await (async () => {
    log(`two groups write ${KEYS} secrets ${ROUNDS} times each, ${CONC} requests at a time per group`);
    const writes = writeFromTwoGroups({
      urls: setup.urls,
      token: setup.token,
      keys: KEYS,
      rounds: ROUNDS,
      concurrency: CONC,
    });
    // SUBSCRIBED=1: a stream open on each server while the writes go on (as the cluster service's own subscription).
    const live = process.env.SUBSCRIBED === '1' ? setup.urls.map((url) => subscribe(url, setup.token)) : [];
    try {
      return await writes;
    } finally {
      for (const stop of live) stop();
    }
  })();
  for (const url of new Set(setup.urls)) {
    const missing = await missingChanges(url, setup.token, acknowledged);
    missingAnywhere += missing.length;
    const byVersion = new Map<string, number>();
    for (const change of missing) {
      const [path, version] = change.split('@');
      const group = `${path!.split('/')[1]!.replace(/k\d+$/, '')}@${version}`;
      byVersion.set(group, (byVersion.get(group) ?? 0) + 1);
    }
    console.log(
      `${url}: ${acknowledged.length} writes acknowledged, ${missing.length} missing from the stream` +
        (missing.length ? ` (group@version: ${[...byVersion].map(([k, n]) => `${k} ${n}`).join(', ')})` : ''),
    );
  }
} finally {
  await setup.stop();
}
process.exit(missingAnywhere > 0 ? 1 : 0);

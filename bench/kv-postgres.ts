// KV v2 on PostgreSQL storage (issue 5): read and write throughput with one node, then with two nodes on the same
// table, measured with autocannon.
//
//   npm run build && node --import tsx bench/kv-postgres.ts
//
// A throwaway PostgreSQL 15 (scripts/test-databases.ts; note it runs with fsync=off, see bench/README.md), Cofre
// nodes as `cofre server --config` processes (dist/cli/main.js) on one table, 1,000 secrets, then BENCH_SECONDS of
// reads and of writes at BENCH_CONNECTIONS connections in all (split evenly over the nodes).
import { rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import autocannon from 'autocannon';
import { startPostgres } from '../scripts/test-databases.js';
import { startNode, unseal, type Node } from '../test/cluster-support.js';
import { apiClient, tempDir } from '../test/support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const KEYS = 1000;

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function load(nodes: Node[], token: string, write: boolean) {
  let n = 0;
  const runs = nodes.map((node) =>
    autocannon({
      url: node.url,
      connections: Math.max(1, Math.floor(CONNECTIONS / nodes.length)),
      duration: SECONDS,
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      requests: [
        write
          ? {
              method: 'POST',
              setupRequest: (req) => ({
                ...req,
                path: `/v1/secret/data/bench/w${n++ % 5000}`,
                body: JSON.stringify({ data: { value: `v-${n}` } }),
              }),
            }
          : { method: 'GET', setupRequest: (req) => ({ ...req, path: `/v1/secret/data/bench/k${n++ % KEYS}` }) },
      ],
    }),
  );
  return Promise.all(runs).then((results) => ({
    requestsPerSec: results.reduce((sum, r) => sum + Math.round(r.requests.average), 0),
    p50ms: Math.max(...results.map((r) => r.latency.p50)),
    p99ms: Math.max(...results.map((r) => r.latency.p99)),
    non2xx: results.reduce((sum, r) => sum + r.non2xx + r.errors, 0),
  }));
}

async function main(): Promise<void> {
  const db = await startPostgres({ durable: true });
  const dir = tempDir('bench-kv-pg');
  const nodes: Node[] = [];
  try {
    nodes.push(await startNode(dir, 'n1', db.url, { built: true }));
    nodes.push(await startNode(dir, 'n2', db.url, { built: true }));
    const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    const token = init.body.root_token as string;
    for (const node of nodes) await unseal(node, init.body.keys, 1);
    const api = apiClient(nodes[0]!.url, token);
    await api.call('POST', 'sys/mounts/secret', { body: { type: 'kv', options: { version: '2' } } });
    log(`writing ${KEYS} secrets`);
    for (let i = 0; i < KEYS; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          api.call('POST', `secret/data/bench/k${i + j}`, { body: { data: { value: `v${i + j}` } } }),
        ),
      );
    }
    const results = [];
    for (const count of [1, 2]) {
      const using = nodes.slice(0, count);
      log(`${count} node(s): reads for ${SECONDS} s`);
      const reads = await load(using, token, false);
      log(`${count} node(s): writes for ${SECONDS} s`);
      const writes = await load(using, token, true);
      results.push({ nodes: count, reads, writes });
    }
    const machine = `${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
    console.log(JSON.stringify({ machine, node: process.version, connections: CONNECTIONS, results }));
  } finally {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

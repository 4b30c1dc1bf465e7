// KV v2 read and write throughput on a dev server at concurrency 64, measured with autocannon.
// Usage: npm run bench  (options: BENCH_SECONDS=10 BENCH_CONNECTIONS=64)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);
const port = Number(process.env.BENCH_PORT ?? 18200);
const token = 'bench-root';
const url = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'cofre-bench-'));

const server = spawn(
  process.execPath,
  [
    'dist/cli/main.js',
    'server',
    '--dev',
    '--data-dir',
    dir,
    '--dev-listen-address',
    `127.0.0.1:${port}`,
    '--dev-root-token-id',
    token,
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);

async function waitHealthy() {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/v1/sys/health`)).status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

function run(title, opts) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections,
        duration: seconds,
        headers: { 'x-vault-token': token, 'content-type': 'application/json' },
        ...opts,
      },
      (err, res) => {
        if (err) return reject(err);
        const line = {
          title,
          requestsPerSec: Math.round(res.requests.average),
          p50ms: res.latency.p50,
          p99ms: res.latency.p99,
          non2xx: res.non2xx,
          errors: res.errors,
        };
        console.log(JSON.stringify(line));
        resolve(line);
      },
    );
  });
}

try {
  await waitHealthy();
  console.log(
    `# machine: ${cpus().length} x ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  console.log(`# ${connections} connections, ${seconds} s each`);
  const keys = 1000;
  for (let i = 0; i < keys; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) =>
        fetch(`${url}/v1/secret/data/bench/k${i + j}`, {
          method: 'POST',
          headers: { 'x-vault-token': token },
          body: JSON.stringify({ data: { password: `value-${i + j}`, user: 'bench' } }),
        }),
      ),
    );
  }
  let n = 0;
  await run('kv2 read', {
    method: 'GET',
    requests: [{ setupRequest: (req) => ({ ...req, path: `/v1/secret/data/bench/k${n++ % keys}` }) }],
  });
  let w = 0;
  await run('kv2 write (durable)', {
    method: 'POST',
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          path: `/v1/secret/data/bench/w${w % 5000}`,
          body: JSON.stringify({ data: { password: `pw-${w++}`, user: 'bench' } }),
        }),
      },
    ],
  });
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}

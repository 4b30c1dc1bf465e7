// In-pod agent benchmark (issue 12): the agent's RSS and the time from a KV write to the re-rendered file.
//
//   node --import tsx bench/pod-agent.ts        (after `npm run build`, the agent runs from dist/ without tsx)
//
// A real control plane (scripts/test-cluster.ts, no controller manager), a Cofre server in this process with
// Kubernetes auth configured as test/pod-agent.test.ts does, and `cofre agent` as a native sidecar would run it: its
// own process (the built dist/cli/main.js when present, else src/cli/main.ts through tsx), logging in with a
// service-account token from TokenRequest and rendering one KV secret into a file. Then ROTATIONS times, one after
// another, a new version is written through the HTTP API and the file is polled (every 2 ms) until it holds it.
//
// Options (environment): BENCH_ROTATIONS (100), BENCH_TSX=1 (run the agent through tsx even when dist/ exists).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { agentEnv, freshDir, startAgentWorld } from '../test/pod-agent-support.js';
import { writeOk } from '../test/support.js';

const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 100);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rss(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function waitFor(what: string, probe: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const world = await startAgentWorld('bench-agent', 'path "secret/data/bench/*" {\n  capabilities = ["read"]\n}\n');
try {
  await writeOk(world.srv.api, 'secret/data/bench/db', { data: { password: 'v0' } });
  const dir = freshDir(world, 'bench');
  const file = join(dir, 'secrets', 'db.json');
  const status = join(dir, 'status.json');
  const built = existsSync('dist/cli/main.js') && process.env.BENCH_TSX !== '1';
  const args = built ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
  const config = {
    auth: { role: 'app', token_path: world.tokenFile },
    files_dir: join(dir, 'secrets'),
    items: [{ name: 'db', kv: 'secret/bench/db', file: { path: 'db.json' } }],
  };
  const started = Date.now();
  const agent = spawn(process.execPath, [...args, 'agent', `-status-file=${status}`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...agentEnv(world, config) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // The agent logs every render: kept, and shown only if it fails.
  let log = '';
  agent.stderr!.on('data', (d) => (log += d));
  agent.on('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`the agent exited with ${code}:\n${log}`);
  });
  await waitFor(
    'the agent to follow the change stream',
    () => existsSync(status) && JSON.parse(readFileSync(status, 'utf8')).changeStreamConnected === true,
    30_000,
  );
  const startup = Date.now() - started;
  const atStart = rss(agent.pid!);
  const latencies: number[] = [];
  for (let i = 1; i <= ROTATIONS; i++) {
    const value = `v${i}`;
    const t0 = performance.now();
    await writeOk(world.srv.api, 'secret/data/bench/db', { data: { password: value } });
    await waitFor(`rotation ${i}`, () => readFileSync(file, 'utf8').includes(`"${value}"`), 10_000);
    latencies.push(performance.now() - t0);
    await sleep(20);
  }
  const afterRotations = rss(agent.pid!);
  agent.kill('SIGTERM');
  await new Promise((r) => agent.on('exit', r));
  const sorted = [...latencies].sort((a, b) => a - b);
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const mib = (v: number) => `${v.toFixed(0)} MiB`;
  process.stdout.write(
    [
      `machine: ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''}, Node.js ${process.version}, agent from ${built ? 'dist/' : 'tsx'}`,
      `start-up to following the change stream: ${startup} ms`,
      `RSS at start: ${mib(atStart.rss)}; after ${ROTATIONS} rotations: ${mib(afterRotations.rss)} (VmHWM ${mib(afterRotations.hwm)})`,
      `KV write to re-rendered file over ${ROTATIONS} rotations: p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, max ${ms(sorted.at(-1)!)}, min ${ms(sorted[0]!)}`,
      '',
    ].join('\n'),
  );
} finally {
  await world.stop();
  rmSync(world.dir, { recursive: true, force: true });
}

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';

/**
 * A smoke run of bench/clusters-fanout.ts (20 clusters, 2 rotations, the server from src/ through tsx), so the
 * 1,000-cluster benchmark keeps working: every agent enrols, streams, opens its bundles and acknowledges each
 * revision, and the server's placement status agrees.
 */
describe('bench/clusters-fanout.ts (smoke run)', () => {
  it('20 agents acknowledge a publish and 2 rotations; the placement status shows the last revision', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/clusters-fanout.ts'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        BENCH_TSX: '1',
        BENCH_CLUSTERS: '20',
        BENCH_WORKERS: '2',
        BENCH_ROTATIONS: '2',
        BENCH_IDLE_S: '1',
        BENCH_STAGE_TIMEOUT_S: '15',
      },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, err);
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as {
      clusters: number;
      rotation_ms: { all: number[] };
      placement_status_at_last_revision: number;
      agent_errors: number;
      server: { rss_idle_mib: number }[];
    };
    assert.equal(result.clusters, 20);
    assert.equal(result.rotation_ms.all.length, 2);
    assert.equal(result.placement_status_at_last_revision, 20);
    assert.equal(result.agent_errors, 0);
    assert.ok(result.server[0]!.rss_idle_mib > 0);
  });
});

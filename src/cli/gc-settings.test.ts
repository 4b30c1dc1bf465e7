import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { GC_FLAGS_ENV, knowsServerGcFlags, SERVER_GC_FLAGS, serverGcFlags } from './gc-settings.js';

const flagNames = SERVER_GC_FLAGS.map((flag) => flag.replace(/^--/, '').replace(/=.*$/, ''));

/**
 * A child process that allocates 2 GiB of short-lived 64 KiB Buffers (garbage within a few hundred microseconds,
 * as a request's are) and prints how many full collections it took.
 */
const CHURN = `
  import { PerformanceObserver, constants } from 'node:perf_hooks';
  ${'IMPORT'}
  let majors = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
  }).observe({ entryTypes: ['gc'] });
  for (let round = 0; round < 4096; round++) {
    const held = [];
    for (let i = 0; i < 8; i++) held.push(Buffer.allocUnsafe(64 * 1024).fill(i));
    if (round % 128 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  console.log(JSON.stringify({ applied: typeof applied === 'undefined' ? [] : applied, majors }));
`;

function churn(tuned: boolean): { applied: string[]; majors: number } {
  const prelude = tuned
    ? `import { applyServerGcFlags } from ${JSON.stringify(new URL('./gc-settings.ts', import.meta.url).href)};
       const applied = applyServerGcFlags();`
    : '';
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', CHURN.replace('IMPORT', prelude)],
    {
      encoding: 'utf8',
      env: Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== GC_FLAGS_ENV)),
    },
  );
  assert.equal(child.status, 0, child.stderr);
  assert.doesNotMatch(child.stderr, /flag/i, 'V8 printed no error (an unknown flag prints one)');
  return JSON.parse(child.stdout.trim()) as { applied: string[]; majors: number };
}

describe('garbage collection settings of cofre server', () => {
  it('are set only on a V8 that lists every one of them', () => {
    const options = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
    const listed = flagNames.filter((name) => options.includes(`--${name} `));
    // heap-growing-percent is old; the other one decides.
    assert.equal(
      listed.length === flagNames.length,
      knowsServerGcFlags(),
      `${listed.join(', ')} on V8 ${process.versions.v8}`,
    );
    assert.equal(knowsServerGcFlags('12.4.254.21-node.57'), false, 'Node.js 22');
    assert.equal(knowsServerGcFlags('13.6.233.17-node.63'), true, 'Node.js 24');
    assert.equal(knowsServerGcFlags('13.5.212'), false);
    assert.equal(knowsServerGcFlags('14.1.0'), false, 'a newer V8 is measured before it gets them');
  });

  it('leave alone a flag the command line sets either way', () => {
    const v8 = '13.6.233.17-node.63';
    assert.deepEqual(serverGcFlags([], v8), [...SERVER_GC_FLAGS]);
    assert.deepEqual(serverGcFlags(['--no-external-memory-accounted-in-global-limit'], v8), [
      '--heap-growing-percent=200',
    ]);
    assert.deepEqual(serverGcFlags(['--heap_growing_percent=50', '--inspect'], v8), [
      '--external-memory-accounted-in-global-limit',
    ]);
    assert.deepEqual(
      serverGcFlags(['--external-memory-accounted-in-global-limit', '--heap-growing-percent=0'], v8),
      [],
    );
    assert.deepEqual(serverGcFlags(['--noexternal_memory_accounted_in_global_limit'], v8), [
      '--heap-growing-percent=200',
    ]);
    assert.deepEqual(serverGcFlags([], '12.4.254.21-node.57'), [], 'a V8 without them gets none');
    assert.deepEqual(serverGcFlags([], v8, { [GC_FLAGS_ENV]: 'off' }), [], 'COFRE_GC_FLAGS=off');
    assert.deepEqual(serverGcFlags([], v8, { [GC_FLAGS_ENV]: 'on' }), [...SERVER_GC_FLAGS]);
    for (const meantOff of ['false', '0', 'OFF', ' off']) {
      assert.throws(() => serverGcFlags([], v8, { [GC_FLAGS_ENV]: meantOff }), /COFRE_GC_FLAGS is on or off \(not "/);
      assert.throws(() => serverGcFlags([], '12.4.254.21-node.57', { [GC_FLAGS_ENV]: meantOff }), /on or off/);
    }
  });

  it('stop Buffers that die young from starting full collections', () => {
    if (!knowsServerGcFlags()) {
      assert.deepEqual(serverGcFlags(process.execArgv, process.versions.v8), [], `none on V8 ${process.versions.v8}`);
      return;
    }
    const plain = churn(false);
    const tuned = churn(true);
    assert.deepEqual(tuned.applied, [...SERVER_GC_FLAGS]);
    assert.ok(plain.majors >= 8, `V8's default: a full collection per 64 MiB of Buffers (${plain.majors})`);
    assert.ok(tuned.majors <= 2, `tuned: ${tuned.majors} full collections for 2 GiB of young Buffers`);
  });
});

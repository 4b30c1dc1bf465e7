import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Api } from './support.js';

/**
 * Fuzzes the server's own OpenAPI document with schemathesis (a fuzzer we did not write) and fails the test on any
 * 5xx. `filter` narrows the paths (`--include-path-regex` or `--exclude-path-regex` with its pattern). The run is
 * asynchronous, so what the test serves in this process (a JWKS, say) keeps answering meanwhile.
 */
export async function fuzzWithSchemathesis(
  api: Api,
  token: string,
  dir: string,
  opts: { maxExamples: number; filter: [string, string] },
): Promise<void> {
  const probe = spawnSync('schemathesis', ['--version'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, 'schemathesis is needed: pip install schemathesis (.ci/run installs it)');
  const spec = await api.call('GET', 'sys/internal/specs/openapi');
  assert.equal(spec.status, 200, spec.text);
  const file = join(dir, 'openapi.json');
  writeFileSync(file, JSON.stringify(spec.body));
  const run = await promisify(execFile)(
    'schemathesis',
    [
      'run',
      file,
      '--url',
      `${api.url}/v1`,
      '-H',
      `X-Vault-Token: ${token}`,
      '--checks',
      'not_a_server_error',
      '--max-examples',
      String(opts.maxExamples),
      '--seed',
      '1',
      ...opts.filter,
    ],
    {
      encoding: 'utf8',
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
    },
  ).catch((err: { stdout?: string; stderr?: string; message: string }) =>
    assert.fail(`schemathesis failed: ${err.stdout ?? ''}\n${err.stderr ?? err.message}`),
  );
  assert.match(run.stdout, /\d+ generated, \d+ passed/);
}

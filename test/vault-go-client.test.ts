import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../scripts/test-databases.js';
import { assertCovered, cleanEnv, optionalPostgres, postgresEnv, runChecks } from './clients/run-checks.js';
import { startServer, tempDir, type InProcessServer } from './support.js';

const GO_PROGRAM = join(import.meta.dirname, 'clients', 'go');

/**
 * Issue 11's conformance suite, driven by HashiCorp's official Go client (github.com/hashicorp/vault/api) and its
 * userpass and approle login helpers: test/clients/go is a Go program of checks run against a real server.
 */
describe('the official Go client (vault/api) drives Cofre', () => {
  let srv: InProcessServer;
  let db: TestDatabase | undefined;
  const dir = tempDir('go-client');
  const binary = join(dir, 'cofre-go-conformance');

  before(async () => {
    // Go's build cache keeps this fast after the first run; modules come through the module proxy (.ci/run
    // downloads them first).
    await promisify(execFile)('go', ['build', '-buildvcs=false', '-o', binary, '.'], {
      cwd: GO_PROGRAM,
      // Go may be installed without being on PATH, as scripts/kube-binaries.sh allows for.
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/go/bin` },
      timeout: 300_000,
    }).catch((err: { stderr?: string; message: string }) =>
      assert.fail(`building test/clients/go needs Go 1.24 or newer: ${err.stderr ?? err.message}`),
    );
    db = await optionalPostgres();
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every check of test/clients/go', async () => {
    const env = cleanEnv({
      VAULT_ADDR: srv.url,
      VAULT_TOKEN: srv.rootToken,
      COFRE_AUDIT_FILE: join(dir, 'audit.log'),
      // generate-root and rekey (which runs last, and replaces them) need the unseal key shares.
      COFRE_UNSEAL_KEYS: srv.keys.join(','),
      ...postgresEnv(db),
    });
    const report = await runChecks(binary, [], env);
    await assertCovered(report, srv.api, db);
  });
});

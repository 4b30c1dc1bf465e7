import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../scripts/test-databases.js';
import { cleanEnv, optionalPostgres, postgresEnv, runChecks } from './clients/run-checks.js';
import { startServer, tempDir, type InProcessServer } from './support.js';

const SCRIPT = join(import.meta.dirname, 'clients', 'hvac', 'conformance.py');

/** Issue 11's conformance suite, driven by hvac (Python, from PyPI): test/clients/hvac/conformance.py. */
describe('hvac drives Cofre', () => {
  let srv: InProcessServer;
  let db: TestDatabase | undefined;
  const dir = tempDir('hvac');

  before(async () => {
    db = await optionalPostgres();
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every check of test/clients/hvac/conformance.py', async () => {
    const env = cleanEnv({
      VAULT_ADDR: srv.url,
      VAULT_TOKEN: srv.rootToken,
      COFRE_AUDIT_FILE: join(dir, 'audit.log'),
      // generate-root and rekey (which runs last, and replaces them) need the unseal key shares.
      COFRE_UNSEAL_KEYS: srv.keys.join(','),
      // hvac is installed by .ci/run (pip install hvac); a missing module fails the run with its traceback.
      PYTHONDONTWRITEBYTECODE: '1',
      ...postgresEnv(db),
    });
    const report = await runChecks('python3', [SCRIPT], env);
    const areas = ['sys/health', 'sys/mounts', 'sys/auth', 'kv v1', 'kv v2', 'auth/token', 'sys/policy', 'sys/leases'];
    // The features that landed after the first suites: each has its own checks.
    const features = [
      'wrapping',
      'sys/wrapping',
      'cubbyhole',
      'auth/token/create: a batch token',
      'auth/token/roles',
      'auth/token/create/:role',
      'auth/token/tidy',
      'sys/leases/revoke-prefix/auth/token/create',
      'sys/remount',
      'sys/tools/hash',
      'sys/tools/random',
      'sys/metrics',
      'sys/host-info',
      '?help=1',
      'kv: ',
      'sys/generate-root',
      'sys/rekey',
      'sys/step-down',
      'transit: ',
    ];
    for (const area of [...areas, 'sys/audit', 'audit: ', ...features]) {
      assert.ok(
        report.passed.some((c) => c.startsWith(area)),
        `no ${area} check ran:\n${report.output}`,
      );
    }
    // The rekey really happened, seen from the server: five shares, threshold two, unsealed again.
    const sealStatus = (await srv.api.call('GET', 'sys/seal-status')).body;
    assert.deepEqual([sealStatus.n, sealStatus.t, sealStatus.sealed], [5, 2, false]);
    if (db) {
      assert.ok(
        report.passed.some((c) => c.startsWith('database:')),
        `PostgreSQL is here but no database lease check ran:\n${report.output}`,
      );
      assert.deepEqual(await db.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'"), []);
    }
  });
});

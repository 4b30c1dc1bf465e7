import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../scripts/test-databases.js';
import { assertCovered, cleanEnv, optionalPostgres, postgresEnv, runChecks } from './clients/run-checks.js';
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
    await assertCovered(report, srv.api, db, ['transit: ']);
  });
});

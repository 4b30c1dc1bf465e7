// Runs a conformance program of a client we did not write (test/clients/go, test/clients/hvac) against a server
// and reads its report: one line per check, "ok   <what>" or "FAIL <what>: <why>", then "checks: N passed, M failed".
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { postgresBinDir, startPostgres, type TestDatabase } from '../../scripts/test-databases.js';
import type { Api } from '../support.js';

export interface ChecksReport {
  passed: string[];
  failed: string[];
  output: string;
}

/** The environment without the caller's VAULT_* variables, which would point a client somewhere else. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('VAULT_')) env[key] = value;
  return { ...env, ...extra };
}

/** Runs the program (asynchronously: the server answering it runs in this process) and parses its report. */
export async function runChecks(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<ChecksReport> {
  const result = await promisify(execFile)(file, args, { env, timeout: 180_000, maxBuffer: 16 << 20 }).then(
    (r) => ({ ...r, code: 0 }),
    (err: { stdout?: string; stderr?: string; code?: number | string }) => ({
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? String(err),
      code: err.code ?? 1,
    }),
  );
  const output = `${result.stdout}${result.stderr}`;
  const lines = result.stdout.split('\n');
  const report = {
    passed: lines.filter((l) => l.startsWith('ok   ')).map((l) => l.slice(5)),
    failed: lines.filter((l) => l.startsWith('FAIL ')).map((l) => l.slice(5)),
    output,
  };
  // The summary must agree with the lines, and the exit code with the summary: a program that died half-way, or
  // printed nothing, fails here rather than passing on the checks it never ran.
  const summary = /^checks: (\d+) passed, (\d+) failed$/m.exec(result.stdout);
  assert.ok(summary, `no summary line (exit ${result.code}):\n${output}`);
  assert.deepEqual([Number(summary[1]), Number(summary[2])], [report.passed.length, report.failed.length], output);
  assert.deepEqual(report.failed, [], `failed checks:\n${output}`);
  assert.equal(result.code, 0, output);
  return report;
}

/**
 * A PostgreSQL server for the database-lease checks, found as test/database-postgres.test.ts finds one: the server
 * PGHOST names, or a throwaway one started from the machine's binaries. Undefined when there is neither.
 */
export async function optionalPostgres(): Promise<TestDatabase | undefined> {
  if (!process.env.PGHOST && !existsSync(join(postgresBinDir(), 'postgres'))) return undefined;
  return startPostgres();
}

/** The environment the programs read a PostgreSQL superuser from. */
export function postgresEnv(db: TestDatabase | undefined): Record<string, string> {
  if (!db) return {};
  return {
    COFRE_PG_HOST: db.host,
    COFRE_PG_PORT: String(db.port),
    COFRE_PG_USER: db.user,
    COFRE_PG_PASSWORD: db.password,
  };
}

/** The areas and features every client program checks; a program may add its own (hvac: transit). */
const COVERED = [
  'sys/health',
  'sys/mounts',
  'sys/auth',
  'kv v1',
  'kv v2',
  'auth/token',
  'sys/policy',
  'sys/leases',
  'sys/audit',
  'audit: ',
  // The features that landed after the first suites: each has its own checks.
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
];

/**
 * What a whole run must have done, beyond "0 failed": every area ran (a program that lost a group of checks would
 * still report no failure), the rekey happened as the server sees it, and with PostgreSQL, the database lease
 * checks ran and the credentials they revoked are gone from the database itself.
 */
export async function assertCovered(
  report: ChecksReport,
  api: Api,
  db: TestDatabase | undefined,
  more: string[] = [],
): Promise<void> {
  for (const area of [...COVERED, ...more]) {
    assert.ok(
      report.passed.some((c) => c.startsWith(area)),
      `no ${area} check ran:\n${report.output}`,
    );
  }
  // Five shares, threshold two, unsealed again.
  const sealStatus = (await api.call('GET', 'sys/seal-status')).body;
  assert.deepEqual([sealStatus.n, sealStatus.t, sealStatus.sealed], [5, 2, false]);
  if (db) {
    assert.ok(
      report.passed.some((c) => c.startsWith('database:')),
      `PostgreSQL is here but no database lease check ran:\n${report.output}`,
    );
    assert.deepEqual(await db.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'"), []);
  }
}

/**
 * The first-run errors, as a user meets them: the `cofre` command run as a process. A config file that does not
 * parse names its file, line and column; a server nobody listens on is "could not reach" with the address and
 * where it came from. (The API errors the CLI shows are tested in-process in src/cli/commands.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, tempDir } from './support.js';

const dir = tempDir('cli-errors');
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `cofre ARGS` (from the sources, as cli.e2e.test.ts does) with no address or token from the outside. */
function cofre(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const clean: NodeJS.ProcessEnv = { ...process.env, COFRE_TOKEN_FILE: join(dir, 'token'), ...env };
  for (const key of ['COFRE_ADDR', 'VAULT_ADDR', 'COFRE_TOKEN', 'VAULT_TOKEN']) {
    if (!(key in env)) delete clean[key];
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: clean });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end();
  });
}

describe('first-run errors from the cofre command', () => {
  it('server --config with an HCL mistake: file, line, column, what is wrong, and the line (values masked)', async () => {
    const config = join(dir, 'cofre.hcl');
    writeFileSync(config, `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}\n}\nui = true\n`);
    const r = await cofre(['server', '--config', config]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `Error starting server: ${config}:2:10: invalid HCL: unterminated string: the " opened here is not closed ` +
        `on its line\n  2 |   path = "${'*'.repeat(join(dir, 'cofre.db').length)}\n    |          ^\n`,
    );
  });

  it('operator migrate with a block never closed names where it opens', async () => {
    const config = join(dir, 'migrate.hcl');
    writeFileSync(config, 'storage_source "sqlite" {\n  path = "/a.db"\n\nstorage_destination "sqlite" {\n}\n');
    const r = await cofre(['operator', 'migrate', '-config', config]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^Error: ${config}:1:25: invalid HCL: the "\\{" opened here is never closed`));
  });

  it('kv get with the server down: could not reach ADDRESS (from VAULT_ADDR), connection refused', async () => {
    const address = `http://127.0.0.1:${await freePort()}`;
    const r = await cofre(['kv', 'get', 'secret/app/db'], { VAULT_ADDR: address, VAULT_TOKEN: 'root' });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `Error: could not reach the server at ${address} (address from VAULT_ADDR): connection refused ` +
        '(ECONNREFUSED): is the server running and listening there?\n',
    );
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseEnv, promisify } from 'node:util';
import { parseConfig, type FileOutput, type Item } from './config.js';
import { renderEnv, renderFile, RenderError } from './render.js';

const execFileP = promisify(execFile);

function item(spec: object): Item {
  return parseConfig(JSON.stringify({ auth: { role: 'r' }, items: [{ name: 'i', kv: 'secret/s', ...spec }] }))
    .items[0]!;
}
const file = (spec: object, data: Record<string, unknown>) => {
  const it = item({ file: { path: 'f', ...spec } });
  return renderFile(it, it.output as FileOutput, data);
};

describe('rendering an item', () => {
  it('env lines, single-quoting what a shell would expand or split', () => {
    assert.equal(
      file({ format: 'env' }, { A: 'plain', B: 'two\nlines', C: ' edge', D: 5, E: "it's" }),
      'A=plain\nB=\'two\nlines\'\nC=" edge"\nD=5\nE="it\'s"\n',
    );
    assert.throws(
      () => file({ format: 'env' }, { 'not-a-name': 'x' }),
      /field "not-a-name" is not a valid variable name/,
    );
  });

  it('an env file sourced by a shell sets each value as it is and runs nothing of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cofre-env-'));
    try {
      const values: Record<string, string> = {
        SUBST: '$(touch ran-subst)',
        TICKS: '`touch ran-ticks`',
        CHAIN: 'x; touch ran-chain | cat && touch ran-and',
        QUOTES: `it's "quoted" \\ back`,
        LINES: 'first\nsecond',
        EDGES: '  spaced  ',
        VAR: '$HOME and ${PATH}',
        GLOB: '* ? [a] ~',
        PLAIN: 'user@host:5432/db,x=y',
      };
      writeFileSync(join(dir, 'app.env'), file({ format: 'env' }, values));
      const script = `set -a; . ./app.env; set +a; node -e 'process.stdout.write(JSON.stringify(Object.fromEntries(${JSON.stringify(Object.keys(values))}.map((k) => [k, process.env[k]]))))'`;
      const { stdout } = await execFileP('sh', ['-c', script], { cwd: dir });
      assert.deepEqual(JSON.parse(stdout), values);
      assert.deepEqual(readdirSync(dir), ['app.env'], 'sourcing the file ran a command');
      // A dotenv reader (Node's own, as `node --env-file` uses) reads the same values, but for one holding both a
      // single quote and something a shell expands: that form is a shell's only (see render.ts).
      const dotenv = parseEnv(readFileSync(join(dir, 'app.env'), 'utf8'));
      const { QUOTES: _shellsOnly, ...readable } = values;
      assert.deepEqual(Object.fromEntries(Object.keys(readable).map((k) => [k, dotenv[k]])), readable);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('JSON of the selected keys, raw of exactly one key', () => {
    assert.equal(file({ format: 'json' }, { a: 'x', b: 1 }), '{"a":"x","b":1}\n');
    const one = item({ keys: ['b'], file: { path: 'f', format: 'raw' } });
    assert.equal(renderFile(one, one.output as FileOutput, { a: 'x', b: 'only' }), 'only');
    assert.throws(() => file({ format: 'raw' }, { a: 'x', b: 'y' }), /has 2 \(a, b\); name one in "keys"/);
  });

  it('env vars for exec mode, refusing a missing field or a NUL byte without quoting the value', () => {
    const env = item({ env: { USER: 'username', PASS: 'password' } });
    const vars = (env.output as { vars: Record<string, string> }).vars;
    assert.deepEqual(renderEnv(env, vars, { username: 'u', password: 'p' }), { USER: 'u', PASS: 'p' });
    assert.throws(() => renderEnv(env, vars, { username: 'u' }), /no field "password" \(for PASS\)/);
    assert.throws(
      () => renderEnv(env, vars, { username: 'u', password: 'se\0cret' }),
      (err: Error) => err instanceof RenderError && !err.message.includes('se\0cret'),
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, type FileOutput, type Item } from './config.js';
import { renderEnv, renderFile, RenderError } from './render.js';

function item(spec: object): Item {
  return parseConfig(JSON.stringify({ auth: { role: 'r' }, items: [{ name: 'i', kv: 'secret/s', ...spec }] }))
    .items[0]!;
}
const file = (spec: object, data: Record<string, unknown>) => {
  const it = item({ file: { path: 'f', ...spec } });
  return renderFile(it, it.output as FileOutput, data);
};

describe('rendering an item', () => {
  it('env lines, JSON-quoting what a reader would split', () => {
    assert.equal(
      file({ format: 'env' }, { A: 'plain', B: 'two\nlines', C: ' edge', D: 5 }),
      'A=plain\nB="two\\nlines"\nC=" edge"\nD=5\n',
    );
    assert.throws(
      () => file({ format: 'env' }, { 'not-a-name': 'x' }),
      /field "not-a-name" is not a valid variable name/,
    );
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

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readDefinition } from './definition-file.js';
import { CliError } from './errors.js';
import type { InputSources } from './input.js';

/** Files and stdin as the command would read them. */
function sources(files: Record<string, string>, stdin = ''): InputSources {
  return {
    readFile: async (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
      return text;
    },
    readStdin: async () => stdin,
  };
}

const usage = (pattern: RegExp) => (err: unknown) =>
  err instanceof CliError && err.exitCode === 2 && pattern.test(err.message);

describe('readDefinition', () => {
  it('reads JSON or YAML from a file, "@file" or stdin ("-")', async () => {
    const yaml = 'namespace: shop\nitems:\n  - {name: db, mode: secret, kv: {mount: secret, path: app/db}}\n';
    const want = {
      namespace: 'shop',
      items: [{ name: 'db', mode: 'secret', kv: { mount: 'secret', path: 'app/db' } }],
    };
    const src = sources({ 'd.yaml': yaml, 'd.json': JSON.stringify(want) }, yaml);
    assert.deepEqual(await readDefinition('d.yaml', src), want);
    assert.deepEqual(await readDefinition('@d.json', src), want);
    assert.deepEqual(await readDefinition('-', src), want);
  });

  it('refuses what is not an object, and says which input could not be parsed or read', async () => {
    const src = sources({ 'list.yaml': '- a\n- b\n', 'bad.yaml': 'items: [unclosed', 'empty.json': '' });
    await assert.rejects(readDefinition('list.yaml', src), usage(/Expected an object \(JSON or YAML\) in list\.yaml/));
    await assert.rejects(readDefinition('empty.json', src), usage(/Expected an object/));
    await assert.rejects(readDefinition('bad.yaml', src), usage(/Failed to parse bad\.yaml as JSON or YAML/));
    await assert.rejects(
      readDefinition('missing.yaml', src),
      (err: unknown) =>
        err instanceof CliError && err.exitCode === 1 && /Error reading file missing\.yaml/.test(err.message),
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { CliError } from './errors.js';
import { parseKeyValues, readStdin } from './input.js';
import type { InputSources } from './input.js';

function sources(files: Record<string, string>, stdin = ''): InputSources & { stdinReads: number } {
  const s = {
    stdinReads: 0,
    readFile: async (path: string): Promise<string> => {
      const f = files[path];
      if (f === undefined) throw new Error(`ENOENT: ${path}`);
      return f;
    },
    readStdin: async (): Promise<string> => {
      s.stdinReads++;
      return stdin;
    },
  };
  return s;
}

describe('parseKeyValues', () => {
  it('parses key=value pairs, keeping "=" in values', async () => {
    assert.deepEqual(await parseKeyValues(['a=1', 'b=x=y', 'c='], sources({})), { a: '1', b: 'x=y', c: '' });
  });

  it('reads @file values and keeps \\@ literal', async () => {
    const src = sources({ '/tmp/p.hcl': 'path "x" {}\n' });
    assert.deepEqual(await parseKeyValues(['policy=@/tmp/p.hcl', 'email=\\@me'], src), {
      policy: 'path "x" {}\n',
      email: '@me',
    });
  });

  it('reads a value from stdin with key=-', async () => {
    const src = sources({}, 'secret-from-stdin');
    assert.deepEqual(await parseKeyValues(['v=-'], src), { v: 'secret-from-stdin' });
  });

  it('merges a JSON object from stdin ("-") and from @file', async () => {
    const src = sources({ 'd.json': '{"c":true}' }, '{"a":"1","b":{"n":2}}');
    assert.deepEqual(await parseKeyValues(['-', '@d.json', 'z=9'], src), { a: '1', b: { n: 2 }, c: true, z: '9' });
  });

  it('collects repeated keys into a list', async () => {
    assert.deepEqual(await parseKeyValues(['k=1', 'k=2', 'k=3'], sources({})), { k: ['1', '2', '3'] });
  });

  it('rejects malformed arguments, non-object JSON and reading stdin twice', async () => {
    await assert.rejects(parseKeyValues(['novalue'], sources({})), (e: unknown) => {
      return e instanceof CliError && e.exitCode === 2 && /key=value/.test(e.message);
    });
    await assert.rejects(parseKeyValues(['=x'], sources({})), CliError);
    await assert.rejects(parseKeyValues(['-'], sources({}, '[1,2]')), /JSON object/);
    await assert.rejects(parseKeyValues(['-'], sources({}, '{oops')), /Failed to parse JSON/);
    await assert.rejects(parseKeyValues(['a=-', 'b=-'], sources({}, 'x')), /only be read once/);
    await assert.rejects(parseKeyValues(['a=@missing'], sources({})), /Error reading file missing/);
  });
});

describe('readStdin', () => {
  it('reads a whole stream', async () => {
    assert.equal(await readStdin(Readable.from([Buffer.from('ab'), Buffer.from('c\n')])), 'abc\n');
  });
});

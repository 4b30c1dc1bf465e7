import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { normaliseArgv } from './argv.js';

function program(): Command {
  const p = new Command('cofre').version('1.0.0', '-v, --version').enablePositionalOptions();
  const kv = p.command('kv');
  kv.command('get <path>').option('--format <f>').option('--field <f>').option('--version <n>').option('--mount <m>');
  kv.command('put <path> [data...]').option('--cas <n>').option('--mount <m>');
  const token = p.command('token');
  token
    .command('create')
    .option('--policy <p>')
    .option('--renewable')
    .option('--no-renewable')
    .option('--orphan')
    .option('-i, --increment <d>');
  p.command('write <path> [data...]').option('-f, --force').option('--format <f>');
  return p;
}

describe('normaliseArgv', () => {
  it('rewrites single-dash long flags of the invoked command', () => {
    assert.deepEqual(normaliseArgv(['kv', 'get', '-format=json', '-field', 'a', 'secret/foo'], program()), [
      'kv',
      'get',
      '--format=json',
      '--field',
      'a',
      'secret/foo',
    ]);
  });

  it('uses the subcommand in context (kv get -version is not the program version)', () => {
    assert.deepEqual(normaliseArgv(['kv', 'get', '-version=2', 'x'], program()), ['kv', 'get', '--version=2', 'x']);
    assert.deepEqual(normaliseArgv(['-version'], program()), ['--version']);
  });

  it('leaves unknown flags, short flags, "-", "--" and values alone', () => {
    assert.deepEqual(normaliseArgv(['write', '-f', 'p', '-', '-bogus=1'], program()), [
      'write',
      '-f',
      'p',
      '-',
      '-bogus=1',
    ]);
    assert.deepEqual(normaliseArgv(['write', 'p', '--', '-format=json'], program()), [
      'write',
      'p',
      '--',
      '-format=json',
    ]);
    // the value of a space-separated flag is never rewritten, even if it looks like a flag
    assert.deepEqual(normaliseArgv(['kv', 'get', '-field', '-format', 'x'], program()), [
      'kv',
      'get',
      '--field',
      '-format',
      'x',
    ]);
  });

  it('maps boolean =true/=false to the flag, its negation, or nothing', () => {
    const p = program();
    assert.deepEqual(normaliseArgv(['token', 'create', '-renewable=false', '-orphan=true'], p), [
      'token',
      'create',
      '--no-renewable',
      '--orphan',
    ]);
    assert.deepEqual(normaliseArgv(['token', 'create', '-orphan=false', '--renewable=true'], p), [
      'token',
      'create',
      '--renewable',
    ]);
  });

  it('keeps the value of short flags that take one', () => {
    assert.deepEqual(normaliseArgv(['token', 'create', '-i', '-5', '-policy=a'], program()), [
      'token',
      'create',
      '-i',
      '-5',
      '--policy=a',
    ]);
  });

  it('turns -help into --help anywhere', () => {
    assert.deepEqual(normaliseArgv(['kv', 'put', '-help'], program()), ['kv', 'put', '--help']);
  });

  it('does not descend into subcommands after an operand', () => {
    // "get" here is data for write, not the kv subcommand
    assert.deepEqual(normaliseArgv(['write', 'p', 'get', '-format=json'], program()), [
      'write',
      'p',
      'get',
      '--format=json',
    ]);
  });
});

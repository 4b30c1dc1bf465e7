import type { Command } from 'commander';
import type { Secret } from '../../client/wire.js';
import { apiCommand, clientFrom, ensureTrailingSlash, outputFrom, sanitizePath } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound, usageError } from '../errors.js';
import { parseKeyValues } from '../input.js';
import type { Output } from '../output.js';

/** Query parameters from `k=v` arguments (as `vault read` and `vault delete` send them). */
async function queryFrom(args: string[]): Promise<Record<string, string | string[]> | undefined> {
  if (args.length === 0) return undefined;
  const data = await parseKeyValues(args);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(data)) query[k] = Array.isArray(v) ? v.map(String) : String(v);
  return query;
}

/** The keys of a LIST answer, or a "No value found" error (exit 2). */
export function listKeys(secret: Secret | null, path: string): string[] {
  const keys = secret?.data?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw notFound(`No value found at ${path}`);
  return keys.map(String);
}

/** Prints a write's answer, or Vault's success line when there is none. */
export function printWritten(output: Output, secret: Secret | null, path: string): void {
  if (output.wrapped(secret)) return;
  const empty = !secret || (!secret.data && !secret.auth && !(secret.warnings && secret.warnings.length));
  if (empty) return output.success(`Success! Data written to: ${path}`);
  output.secret(secret);
}

export function registerGenericCommands(program: Command): void {
  apiCommand(program, 'read <path> [params...]', 'Read data at a path (any secrets engine or system endpoint)')
    .addHelpText('after', '\nExamples:\n  $ cofre read secret/data/foo\n  $ cofre read -field=value sys/mounts')
    .action(async (rawPath: string, params: string[], flags: CommonFlags) => {
      const output = outputFrom(flags);
      const path = sanitizePath(rawPath);
      const secret = await clientFrom(flags).read(path, await queryFrom(params));
      if (!secret) throw notFound(`No value found at ${path}`);
      output.secret(secret);
    });

  apiCommand(
    program,
    'write <path> [data...]',
    'Write data (key=value, key=@file, key=- for stdin, @file.json or - for a JSON object on stdin) to a path',
  )
    .option('-f, --force', 'allow the write without any data')
    .addHelpText(
      'after',
      '\nExamples:\n  $ cofre write secret/foo value=bar\n  $ cofre write sys/policies/acl/p policy=@p.hcl\n' +
        '  $ echo \'{"a":"b"}\' | cofre write secret/foo -',
    )
    .action(async (rawPath: string, args: string[], flags: CommonFlags & { force?: boolean }) => {
      const output = outputFrom(flags);
      const path = sanitizePath(rawPath);
      const data = await parseKeyValues(args);
      if (Object.keys(data).length === 0 && !flags.force) throw usageError('Must supply data or use -force');
      const secret = await clientFrom(flags).write(path, data);
      printWritten(output, secret, path);
    });

  apiCommand(program, 'delete <path> [params...]', 'Delete data at a path (key=value arguments become query params)')
    .addHelpText('after', '\nExample:\n  $ cofre delete secret/foo')
    .action(async (rawPath: string, params: string[], flags: CommonFlags) => {
      const output = outputFrom(flags);
      const path = sanitizePath(rawPath);
      const secret = await clientFrom(flags).delete(path, await queryFrom(params));
      if (output.wrapped(secret)) return;
      if (secret && (secret.data || secret.warnings?.length)) return output.secret(secret);
      output.success(`Success! Data deleted (if it existed) at: ${path}`);
    });

  apiCommand(program, 'list <path>', 'List the keys under a path (names ending in "/" are folders)')
    .addHelpText('after', '\nExample:\n  $ cofre list secret/metadata/')
    .action(async (rawPath: string, flags: CommonFlags) => {
      const output = outputFrom(flags);
      const path = ensureTrailingSlash(sanitizePath(rawPath));
      const secret = await clientFrom(flags).list(path);
      if (output.wrapped(secret)) return;
      const keys = listKeys(secret, path);
      if (output.field) return output.secret(secret as Secret);
      output.list(keys);
    });
}

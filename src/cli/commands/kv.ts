import type { Command } from 'commander';
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import type { Secret } from '../../client/wire.js';
import { apiCommand, clientFrom, collectList, ensureTrailingSlash, outputFrom, parseInteger } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound, usageError } from '../errors.js';
import { pathBlock, titledTable } from '../format.js';
import { parseKeyValues } from '../input.js';
import { stdio } from '../output.js';
import type { Output } from '../output.js';
import { listKeys } from './generic.js';
import { registerKvMetadataCommands } from './kv-metadata.js';
import { addEnableVersioning } from './secrets.js';
import { kvApiPath, parseVersions, requireV2, resolveKv } from './kv-path.js';
import type { KvTarget } from './kv-path.js';

interface KvFlags extends CommonFlags {
  mount?: string;
  cas?: number;
  version?: number;
  versions?: string[];
  method?: string;
}

type Data = Record<string, unknown>;

/** What `kv put` and `kv patch` print: the path and the new version's metadata (v2), or a success line (v1). */
function printWrite(output: Output, target: KvTarget, path: string, secret: Secret | null): void {
  if (output.wrapped(secret)) return;
  if (target.version === 1 || !secret?.data) return output.success(`Success! Data written to: ${path}`);
  if (output.field || output.json) return output.secret(secret);
  output.warnings(secret.warnings);
  output.out(`${pathBlock(path)}\n${titledTable('Metadata', secret.data)}`);
}

function v2Body(data: Data, cas: number | undefined): Data {
  return cas === undefined ? { data } : { data, options: { cas } };
}

async function readThenWrite(client: VaultClient, path: string, data: Data, cas?: number): Promise<Secret | null> {
  const current = await client.read(path);
  const existing = current?.data?.data as Data | null | undefined;
  if (!current || !existing) throw notFound(`No value found at ${path}`);
  const version = (current.data?.metadata as { version?: number } | undefined)?.version;
  return client.write(path, v2Body({ ...existing, ...data }, cas ?? version));
}

async function dataArgs(args: string[]): Promise<Data> {
  const data = await parseKeyValues(args);
  if (Object.keys(data).length === 0) throw usageError('Must supply data');
  return data;
}

const mountHelp = 'the KV mount; the next argument is then the key inside it';

export function registerKvCommands(program: Command): void {
  const kv = program.command('kv').description('Interact with the key/value secrets engine (KV version 1 and 2)');
  kv.addHelpText('after', '\nExamples:\n  $ cofre kv put -mount=secret creds pass=x\n  $ cofre kv get secret/creds');

  apiCommand(kv, 'put <path> [data...]', 'Create or update a secret (key=value, key=@file, - for JSON on stdin)')
    .option('--mount <mount>', mountHelp)
    .option(
      '--cas <version>',
      'check-and-set: write only if the current version matches (0: only if new)',
      parseInteger,
    )
    .action(async (pathArg: string, args: string[], flags: KvFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const data = await dataArgs(args);
      const target = await resolveKv(client, pathArg, flags.mount);
      const path = kvApiPath(target, 'data');
      const secret = await client.write(path, target.version === 2 ? v2Body(data, flags.cas) : data);
      printWrite(output, target, path, secret);
    });

  apiCommand(kv, 'patch <path> [data...]', 'Update some keys of a KV v2 secret, keeping the others')
    .option('--mount <mount>', mountHelp)
    .option('--cas <version>', 'check-and-set: patch only if the current version matches', parseInteger)
    .option('--method <method>', 'patch (HTTP PATCH) or rw (read, then write); default: patch, falling back to rw')
    .action(async (pathArg: string, args: string[], flags: KvFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const data = await dataArgs(args);
      const target = await resolveKv(client, pathArg, flags.mount);
      requireV2(target, 'kv patch');
      const path = kvApiPath(target, 'data');
      let secret: Secret | null;
      if (flags.method === 'rw') secret = await readThenWrite(client, path, data, flags.cas);
      else if (flags.method === 'patch') secret = await client.patch(path, v2Body(data, flags.cas));
      else if (flags.method === undefined) {
        try {
          secret = await client.patch(path, v2Body(data, flags.cas));
        } catch (err) {
          if (!(err instanceof ApiError) || ![403, 405].includes(err.status)) throw err;
          output.err('Patching with HTTP PATCH failed; falling back to read-then-write.');
          secret = await readThenWrite(client, path, data, flags.cas);
        }
      } else throw usageError(`Invalid -method "${flags.method}" (expected patch or rw)`);
      printWrite(output, target, path, secret);
    });

  apiCommand(kv, 'get <path>', 'Read a secret (the latest version, or -version=N)')
    .option('--mount <mount>', mountHelp)
    .option('--version <n>', 'the version to read (KV v2; default latest)', parseInteger)
    .action(async (pathArg: string, flags: KvFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const target = await resolveKv(client, pathArg, flags.mount);
      const path = kvApiPath(target, 'data');
      const query =
        target.version === 2 && flags.version !== undefined ? { version: String(flags.version) } : undefined;
      const secret = await client.read(path, query);
      if (!secret) throw notFound(`No value found at ${path}`);
      if (output.wrapped(secret)) return;
      const v2 = target.version === 2;
      const inner = v2 ? ((secret.data?.data as Data | null | undefined) ?? null) : (secret.data ?? null);
      if (output.field) {
        if (!v2) return output.secret(secret);
        if (!inner) throw notFound(`No data found at ${path}`);
        if (output.field === 'data' && !('data' in inner)) return output.secret(secret);
        return output.printField(inner[output.field]);
      }
      if (output.json) return output.printJson(secret);
      output.warnings(secret.warnings);
      const blocks: string[] = [];
      if (v2) blocks.push(pathBlock(path));
      const metadata = v2 ? (secret.data?.metadata as Data | null | undefined) : undefined;
      if (metadata) blocks.push(titledTable('Metadata', metadata));
      if (inner) blocks.push(titledTable('Data', inner));
      output.out(blocks.join('\n'));
    });

  apiCommand(kv, 'delete <path>', 'Delete the latest version of a secret, or -versions (soft delete on KV v2)', false)
    .option('--mount <mount>', mountHelp)
    .option('--versions <list>', 'versions to delete, e.g. 1,2 (repeatable)', collectList)
    .action(async (pathArg: string, flags: KvFlags) => {
      const client = clientFrom(flags);
      const target = await resolveKv(client, pathArg, flags.mount);
      const versions = parseVersions(flags.versions);
      let path = kvApiPath(target, 'data');
      if (target.version === 2 && versions.length > 0) {
        path = kvApiPath(target, 'delete');
        await client.write(path, { versions });
      } else {
        if (versions.length > 0) throw usageError('-versions is only supported on KV version 2');
        await client.delete(path);
      }
      stdio.stdout.write(`Success! Data deleted (if it existed) at: ${path}\n`);
    });

  for (const [name, description] of [
    ['undelete', 'Restore deleted versions of a KV v2 secret'],
    ['destroy', 'Permanently remove versions of a KV v2 secret'],
  ] as const) {
    apiCommand(kv, `${name} <path>`, description, false)
      .option('--mount <mount>', mountHelp)
      .requiredOption('--versions <list>', `versions to ${name}, e.g. 1,2 (repeatable)`, collectList)
      .action(async (pathArg: string, flags: KvFlags) => {
        const client = clientFrom(flags);
        const versions = parseVersions(flags.versions);
        if (versions.length === 0) throw usageError('No versions specified');
        const target = await resolveKv(client, pathArg, flags.mount);
        requireV2(target, `kv ${name}`);
        const path = kvApiPath(target, name);
        await client.write(path, { versions });
        stdio.stdout.write(`Success! Data written to: ${path}\n`);
      });
  }

  apiCommand(kv, 'list [path]', 'List the keys under a path (names ending in "/" are folders)')
    .option('--mount <mount>', mountHelp)
    .action(async (pathArg: string | undefined, flags: KvFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const target = await resolveKv(client, pathArg, flags.mount);
      const path = ensureTrailingSlash(kvApiPath(target, 'metadata'));
      const secret = await client.list(path);
      if (output.wrapped(secret)) return;
      const keys = listKeys(secret, path);
      if (output.field) return output.secret(secret as Secret);
      output.list(keys);
    });

  registerKvMetadataCommands(kv);
  addEnableVersioning(kv);
}

import type { Command } from 'commander';
import { apiCommand, clientFrom, collectMap, outputFrom, parseDuration, parseInteger } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound } from '../errors.js';
import { pathBlock, titledTable } from '../format.js';
import { kvApiPath, requireV2, resolveKv } from './kv-path.js';
import { stdio } from '../output.js';

interface MetadataFlags extends CommonFlags {
  mount?: string;
  maxVersions?: number;
  casRequired?: boolean;
  deleteVersionAfter?: string;
  customMetadata?: Record<string, string>;
}

type Data = Record<string, unknown>;

/** The body of a metadata write, from the flags that were given. */
export function metadataBody(flags: MetadataFlags): Data {
  const body: Data = {};
  if (flags.maxVersions !== undefined) body.max_versions = flags.maxVersions;
  if (flags.casRequired !== undefined) body.cas_required = flags.casRequired;
  if (flags.deleteVersionAfter !== undefined) body.delete_version_after = flags.deleteVersionAfter;
  if (flags.customMetadata !== undefined) body.custom_metadata = flags.customMetadata;
  return body;
}

/** `kv metadata get` as Vault prints it: the metadata, then one table per version (ascending). */
export function metadataText(path: string, data: Data): string {
  const { versions, ...metadata } = data;
  const blocks = [pathBlock(path, 'Metadata Path'), titledTable('Metadata', metadata)];
  const byVersion = (versions ?? {}) as Record<string, Data>;
  for (const v of Object.keys(byVersion).sort((a, b) => Number(a) - Number(b))) {
    blocks.push(titledTable(`Version ${v}`, byVersion[v] ?? {}));
  }
  return blocks.join('\n');
}

export function registerKvMetadataCommands(kv: Command): void {
  const metadata = kv.command('metadata').description('Manage the metadata and versions of KV v2 secrets');
  const mountHelp = 'the KV mount; the next argument is then the key inside it';

  apiCommand(metadata, 'get <path>', 'Read the metadata of a key and of each of its versions')
    .option('--mount <mount>', mountHelp)
    .action(async (pathArg: string, flags: MetadataFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const target = await resolveKv(client, pathArg, flags.mount);
      requireV2(target, 'kv metadata');
      const path = kvApiPath(target, 'metadata');
      const secret = await client.read(path);
      if (output.wrapped(secret)) return;
      if (!secret?.data) throw notFound(`No value found at ${path}`);
      if (output.field || output.json) return output.secret(secret);
      output.warnings(secret.warnings);
      output.out(metadataText(path, secret.data));
    });

  for (const [name, description] of [
    ['put', 'Create or replace the metadata settings of a key'],
    ['patch', 'Change some metadata settings of a key, keeping the others'],
  ] as const) {
    apiCommand(metadata, `${name} <path>`, description, false)
      .option('--mount <mount>', mountHelp)
      .option('--max-versions <n>', 'number of versions to keep (0: the mount default)', parseInteger)
      .option('--cas-required', 'require check-and-set on writes')
      .option('--no-cas-required', 'do not require check-and-set on writes')
      .option('--delete-version-after <duration>', 'delete versions this long after they are written', parseDuration)
      .option('--custom-metadata <key=value>', 'custom metadata (repeatable)', collectMap)
      .action(async (pathArg: string, flags: MetadataFlags) => {
        const client = clientFrom(flags);
        const target = await resolveKv(client, pathArg, flags.mount);
        requireV2(target, 'kv metadata');
        const path = kvApiPath(target, 'metadata');
        const body = metadataBody(flags);
        if (name === 'put') await client.write(path, body, 'POST');
        else await client.patch(path, body);
        stdio.stdout.write(`Success! Data written to: ${path}\n`);
      });
  }

  apiCommand(metadata, 'delete <path>', 'Delete a key: all its versions and its metadata', false)
    .option('--mount <mount>', mountHelp)
    .action(async (pathArg: string, flags: MetadataFlags) => {
      const client = clientFrom(flags);
      const target = await resolveKv(client, pathArg, flags.mount);
      requireV2(target, 'kv metadata');
      const path = kvApiPath(target, 'metadata');
      await client.delete(path);
      stdio.stdout.write(`Success! Data deleted (if it existed) at: ${path}\n`);
    });
}

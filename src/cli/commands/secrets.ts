import type { Command } from 'commander';
import {
  apiCommand,
  clientFrom,
  collectMap,
  ensureTrailingSlash,
  outputFrom,
  parseDuration,
  parseInteger,
  sanitizePath,
} from '../common.js';
import type { CommonFlags } from '../common.js';
import { usageError } from '../errors.js';
import { columns, goString, humanDuration } from '../format.js';
import { unwrap } from './status.js';
import { stdio } from '../output.js';

interface MountFlags extends CommonFlags {
  path?: string;
  description?: string;
  defaultLeaseTtl?: string;
  maxLeaseTtl?: string;
  options?: Record<string, string>;
  version?: number;
  local?: boolean;
  sealWrap?: boolean;
  detailed?: boolean;
}

interface MountEntry {
  type?: string;
  description?: string;
  accessor?: string;
  uuid?: string;
  local?: boolean;
  seal_wrap?: boolean;
  config?: { default_lease_ttl?: number; max_lease_ttl?: number } | null;
  options?: Record<string, string> | null;
}

/** The mount config and options shared by `secrets enable` and `secrets tune`. */
function configAndOptions(flags: MountFlags): { config: Record<string, string>; options?: Record<string, string> } {
  const config: Record<string, string> = {};
  if (flags.defaultLeaseTtl !== undefined) config.default_lease_ttl = flags.defaultLeaseTtl;
  if (flags.maxLeaseTtl !== undefined) config.max_lease_ttl = flags.maxLeaseTtl;
  let options = flags.options ? { ...flags.options } : undefined;
  if (flags.version !== undefined) options = { ...options, version: String(flags.version) };
  return { config, options };
}

/** The body of sys/mounts/PATH for `secrets enable TYPE`; "kv-v2" is KV with version 2, as in Vault. */
export function enableBody(engineType: string, flags: MountFlags): { path: string; body: Record<string, unknown> } {
  let type = engineType;
  const { config, options: opts } = configAndOptions(flags);
  let options = opts;
  if (type === 'kv-v2') {
    type = 'kv';
    options = { ...options, version: '2' };
  }
  const path = ensureTrailingSlash(sanitizePath(flags.path ?? engineType));
  const body: Record<string, unknown> = { type, description: flags.description ?? '', config };
  if (options) body.options = options;
  if (flags.local) body.local = true;
  if (flags.sealWrap) body.seal_wrap = true;
  return { path, body };
}

/** Only the mount entries of a sys/mounts answer (it may also carry the envelope's fields). */
export function mountsOf(body: unknown): Record<string, MountEntry> {
  const all = unwrap<Record<string, unknown>>(body);
  const out: Record<string, MountEntry> = {};
  for (const key of Object.keys(all).sort()) {
    const v = all[key];
    if (key.endsWith('/') && v && typeof v === 'object') out[key] = v as MountEntry;
  }
  return out;
}

export function mountsTable(mounts: Record<string, MountEntry>, detailed = false): string {
  const ttl = (n: number | undefined): string => (n ? humanDuration(n) : 'system');
  const head = detailed
    ? [
        'Path',
        'Plugin',
        'Accessor',
        'Default TTL',
        'Max TTL',
        'Replication',
        'Seal Wrap',
        'Options',
        'Description',
        'UUID',
      ]
    : ['Path', 'Type', 'Accessor', 'Description'];
  const rows = Object.entries(mounts).map(([path, m]) =>
    detailed
      ? [
          path,
          m.type ?? '',
          m.accessor ?? '',
          ttl(m.config?.default_lease_ttl),
          ttl(m.config?.max_lease_ttl),
          m.local ? 'local' : 'replicated',
          String(Boolean(m.seal_wrap)),
          goString(m.options ?? null),
          m.description ?? '',
          m.uuid ?? '',
        ]
      : [path, m.type ?? '', m.accessor ?? '', m.description ?? ''],
  );
  return columns([head, head.map((h) => '-'.repeat(h.length)), ...rows]);
}

export function registerSecretsCommands(program: Command): void {
  const secrets = program.command('secrets').description('Enable, disable, list and tune secrets engines');

  apiCommand(secrets, 'enable <type>', 'Enable a secrets engine (e.g. kv) at a path (default: its type)', false)
    .option('--path <path>', 'where to mount the engine (default: the engine type)')
    .option('--description <text>', 'human-friendly description of the mount')
    .option('--default-lease-ttl <duration>', 'default lease TTL of the mount', parseDuration)
    .option('--max-lease-ttl <duration>', 'maximum lease TTL of the mount', parseDuration)
    .option('--options <key=value>', 'engine option (repeatable)', collectMap)
    .option('--version <n>', 'engine version (kv: 1 or 2); same as -options=version=N', parseInteger)
    .option('--local', 'do not replicate the mount')
    .option('--seal-wrap', 'seal-wrap the mount')
    .addHelpText(
      'after',
      '\nExamples:\n  $ cofre secrets enable -path=kv1 kv\n  $ cofre secrets enable -version=2 -path=apps kv',
    )
    .action(async (type: string, flags: MountFlags) => {
      const client = clientFrom(flags);
      const { path, body } = enableBody(type, flags);
      if (path === '') throw usageError('Missing -path');
      await client.write(`sys/mounts/${path.slice(0, -1)}`, body, 'POST');
      stdio.stdout.write(`Success! Enabled the ${type} secrets engine at: ${path}\n`);
    });

  apiCommand(secrets, 'disable <path>', 'Disable the secrets engine at a path, deleting its data', false).action(
    async (rawPath: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const path = sanitizePath(rawPath);
      if (path === '') throw usageError('Missing PATH');
      await client.delete(`sys/mounts/${path}`);
      stdio.stdout.write(`Success! Disabled the secrets engine (if it existed) at: ${path}/\n`);
    },
  );

  apiCommand(secrets, 'list', 'List the enabled secrets engines')
    .option('--detailed', 'show TTLs, options, replication and UUIDs')
    .action(async (flags: MountFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const mounts = mountsOf(await client.request('GET', 'sys/mounts', { what: 'listing secrets engines' }));
      if (output.field) return output.printField((mounts as Record<string, unknown>)[output.field]);
      if (output.json) return output.printJson(mounts);
      output.out(mountsTable(mounts, flags.detailed));
    });

  apiCommand(secrets, 'tune <path>', 'Tune the configuration of a secrets engine', false)
    .option('--description <text>', 'new description of the mount')
    .option('--default-lease-ttl <duration>', 'default lease TTL of the mount', parseDuration)
    .option('--max-lease-ttl <duration>', 'maximum lease TTL of the mount', parseDuration)
    .option('--options <key=value>', 'engine option (repeatable)', collectMap)
    .option('--version <n>', 'engine version (e.g. upgrade kv to 2)', parseInteger)
    .action(async (rawPath: string, flags: MountFlags) => {
      const client = clientFrom(flags);
      const path = sanitizePath(rawPath);
      if (path === '') throw usageError('Missing PATH');
      const { config, options } = configAndOptions(flags);
      const body: Record<string, unknown> = { ...config };
      if (flags.description !== undefined) body.description = flags.description;
      if (options) body.options = options;
      await client.write(`sys/mounts/${path}/tune`, body, 'POST');
      stdio.stdout.write(`Success! Tuned the secrets engine at: ${path}/\n`);
    });
}

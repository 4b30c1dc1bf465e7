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
import { CliError, usageError } from '../errors.js';
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

/** What tells `cofre secrets` (sys/mounts) and `cofre auth` (sys/auth) apart; the commands are the same. */
interface MountKind {
  command: string;
  api: 'mounts' | 'auth';
  /** "secrets engine" or "auth method". */
  noun: string;
  /** How a success names what was enabled: Vault says "the kv secrets engine" but "kubernetes auth method". */
  enabled: (type: string) => string;
  examples: string;
}

const SECRETS: MountKind = {
  command: 'secrets',
  api: 'mounts',
  noun: 'secrets engine',
  enabled: (type) => `the ${type} secrets engine`,
  examples: '\nExamples:\n  $ cofre secrets enable -path=kv1 kv\n  $ cofre secrets enable -version=2 -path=apps kv',
};

const AUTH: MountKind = {
  command: 'auth',
  api: 'auth',
  noun: 'auth method',
  enabled: (type) => `${type} auth method`,
  examples: '\nExamples:\n  $ cofre auth enable kubernetes\n  $ cofre auth enable -path=ci approle',
};

function registerMountCommands(program: Command, kind: MountKind, description: string): void {
  const group = program.command(kind.command).description(description);

  const enable = apiCommand(group, 'enable <type>', `Enable a ${kind.noun} at a path (default: its type)`, false)
    .option('--path <path>', `where to mount the ${kind.noun} (default: its type)`)
    .option('--description <text>', 'human-friendly description of the mount')
    .option('--default-lease-ttl <duration>', 'default lease TTL of the mount', parseDuration)
    .option('--max-lease-ttl <duration>', 'maximum lease TTL of the mount', parseDuration)
    .option('--options <key=value>', 'option of the mount (repeatable)', collectMap)
    .option('--local', 'do not replicate the mount');
  if (kind.api === 'mounts') {
    enable
      .option('--version <n>', 'engine version (kv: 1 or 2); same as -options=version=N', parseInteger)
      .option('--seal-wrap', 'seal-wrap the mount');
  }
  enable.addHelpText('after', kind.examples).action(async (type: string, flags: MountFlags) => {
    const client = clientFrom(flags);
    const { path, body } = enableBody(type, flags);
    if (path === '') throw usageError('Missing -path');
    await client.write(`sys/${kind.api}/${path.slice(0, -1)}`, body, 'POST');
    stdio.stdout.write(`Success! Enabled ${kind.enabled(type)} at: ${path}\n`);
  });

  apiCommand(group, 'disable <path>', `Disable the ${kind.noun} at a path, deleting its data`, false).action(
    async (rawPath: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const path = sanitizePath(rawPath);
      if (path === '') throw usageError('Missing PATH');
      await client.delete(`sys/${kind.api}/${path}`);
      stdio.stdout.write(`Success! Disabled the ${kind.noun} (if it existed) at: ${path}/\n`);
    },
  );

  apiCommand(group, 'list', `List the enabled ${kind.noun}s`)
    .option('--detailed', 'show TTLs, options, replication and UUIDs')
    .action(async (flags: MountFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const mounts = mountsOf(await client.request('GET', `sys/${kind.api}`, { what: `listing ${kind.noun}s` }));
      if (output.field) return output.printField((mounts as Record<string, unknown>)[output.field]);
      if (output.json) return output.printJson(mounts);
      output.out(mountsTable(mounts, flags.detailed));
    });

  const tune = apiCommand(group, 'tune <path>', `Tune the configuration of a ${kind.noun}`, false)
    .option('--description <text>', 'new description of the mount')
    .option('--default-lease-ttl <duration>', 'default lease TTL of the mount', parseDuration)
    .option('--max-lease-ttl <duration>', 'maximum lease TTL of the mount', parseDuration)
    .option('--options <key=value>', 'option of the mount (repeatable)', collectMap);
  if (kind.api === 'mounts') tune.option('--version <n>', 'engine version (e.g. upgrade kv to 2)', parseInteger);
  tune.action(async (rawPath: string, flags: MountFlags) => {
    const client = clientFrom(flags);
    const path = sanitizePath(rawPath);
    if (path === '') throw usageError('Missing PATH');
    const { config, options } = configAndOptions(flags);
    const body: Record<string, unknown> = { ...config };
    if (flags.description !== undefined) body.description = flags.description;
    if (options) body.options = options;
    await client.write(`sys/${kind.api}/${path}/tune`, body, 'POST');
    stdio.stdout.write(`Success! Tuned the ${kind.noun} at: ${path}/\n`);
  });

  registerMoveCommand(group, kind);
}

/** How often `move` asks for the status of a migration that is still running (Vault's CLI waits 10 s). */
const MOVE_POLL_MS = 10_000;

/**
 * `secrets move` and `auth move`: start a migration with sys/remount, then poll sys/remount/status until it ends,
 * printing Vault's CLI lines. An auth method is named with its auth/ prefix, as in Vault (`auth/approle`).
 */
function registerMoveCommand(group: Command, kind: MountKind): void {
  const usage = kind.api === 'auth' ? 'auth/approle auth/ci' : 'secret kv';
  apiCommand(group, 'move <source> <destination>', `Move a ${kind.noun} to a new path, revoking its leases`, false)
    .addHelpText('after', `\nExample:\n  $ cofre ${kind.command} move ${usage}`)
    .action(async (source: string, destination: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const from = ensureTrailingSlash(source);
      const to = ensureTrailingSlash(destination);
      const what = `${kind.noun} ${from} to ${to}`;
      const fail = (doing: string, err: unknown): CliError =>
        new CliError(`Error ${doing} ${what}: ${err instanceof Error ? err.message : String(err)}`, 2, true);
      let id: string;
      try {
        const started = await client.write('sys/remount', { from, to }, 'POST');
        id = String((started?.data as { migration_id?: unknown } | undefined)?.migration_id ?? '');
      } catch (err) {
        throw fail('moving', err);
      }
      stdio.stdout.write(`Started moving ${what}, with migration ID ${id}\n`);
      for (;;) {
        let status: unknown;
        try {
          const info = (await client.read(`sys/remount/status/${id}`))?.data?.migration_info;
          status = (info as { status?: unknown } | undefined)?.status;
        } catch (err) {
          throw fail('checking migration status of', err);
        }
        if (status === 'success') {
          stdio.stdout.write(`Success! Finished moving ${what}, with migration ID ${id}\n`);
          return;
        }
        if (status === 'failure') {
          // Vault's CLI reports a failed migration on stderr and still exits 0.
          stdio.stderr.write(`Failure! Error encountered moving ${what}, with migration ID ${id}\n`);
          return;
        }
        stdio.stdout.write(`Waiting for terminal status in migration of ${what}, with migration ID ${id}\n`);
        await new Promise((resolve) => setTimeout(resolve, MOVE_POLL_MS));
      }
    });
}

/**
 * `enable-versioning PATH`: Vault's `kv enable-versioning`, also under `secrets`. A tune to options.version=2,
 * which upgrades a KV version 1 mount in place, each secret becoming version 1 of a versioned one.
 */
export function addEnableVersioning(group: Command): void {
  apiCommand(group, 'enable-versioning <path>', 'Upgrade a KV version 1 mount to version 2, keeping its secrets', false)
    .addHelpText('after', '\nExample:\n  $ cofre kv enable-versioning secret/')
    .action(async (rawPath: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const path = ensureTrailingSlash(sanitizePath(rawPath));
      if (path === '') throw usageError('Missing PATH');
      await client.write(`sys/mounts/${path.slice(0, -1)}/tune`, { options: { version: '2' } }, 'POST');
      stdio.stdout.write(`Success! Tuned the secrets engine at: ${path}\n`);
    });
}

export function registerSecretsCommands(program: Command): void {
  registerMountCommands(program, SECRETS, 'Enable, disable, list and tune secrets engines');
  addEnableVersioning(program.commands.find((c) => c.name() === 'secrets')!);
}

export function registerAuthCommands(program: Command): void {
  registerMountCommands(program, AUTH, 'Enable, disable, list and tune auth methods');
}

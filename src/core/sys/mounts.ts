import type { Field, PathRecord, Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest, CofreError } from '../errors.js';
import { SYSTEM_DEFAULT_TTL, SYSTEM_MAX_TTL } from '../expiration.js';
import { parseDuration } from '../fields.js';
import { setOwn } from '../own-keys.js';
import { assertRemovable, MountTable, type MountEntry, type TableName } from '../mount-table.js';

/** The public shape of a mount entry, as Vault's sys/mounts prints it. */
function describe(entry: MountEntry): Record<string, unknown> {
  return {
    accessor: entry.accessor,
    config: {
      default_lease_ttl: entry.config.default_lease_ttl,
      max_lease_ttl: entry.config.max_lease_ttl,
      force_no_cache: false,
    },
    description: entry.description,
    external_entropy_access: false,
    local: entry.local,
    options: Object.keys(entry.options).length > 0 ? entry.options : null,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    seal_wrap: entry.seal_wrap,
    type: entry.type,
    uuid: entry.uuid,
  };
}

/**
 * A tune read shows the TTLs in effect, as Vault's (the mount's system view): the mount's own, else the system
 * defaults. A listing shows 0 for "the system's", a tune read the number it stands for.
 */
function tuneView(entry: MountEntry): Record<string, unknown> {
  return {
    default_lease_ttl: entry.config.default_lease_ttl || SYSTEM_DEFAULT_TTL,
    max_lease_ttl: entry.config.max_lease_ttl || SYSTEM_MAX_TTL,
    force_no_cache: false,
    description: entry.description,
    options: entry.options,
  };
}

/**
 * The fields of Vault's MountConfigInput. The Go client sends its whole struct (`options` even as null), so every
 * one of them is accepted; those Cofre has no use for are ignored, and a key Vault does not know is a typo.
 */
const MOUNT_CONFIG_FIELDS = new Set([
  'default_lease_ttl',
  'max_lease_ttl',
  'force_no_cache',
  'audit_non_hmac_request_keys',
  'audit_non_hmac_response_keys',
  'listing_visibility',
  'passthrough_request_headers',
  'allowed_response_headers',
  'description',
  'options',
  'token_type',
  'plugin_name',
  'plugin_version',
  'allowed_managed_keys',
  'user_lockout_config',
  'delegated_auth_accessors',
  'identity_token_key',
]);

function readConfig(value: unknown): { default_lease_ttl: number; max_lease_ttl: number } {
  const config = (value ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!MOUNT_CONFIG_FIELDS.has(key)) throw badRequest(`unknown mount config field "${key}"`);
  }
  return {
    default_lease_ttl: parseDuration(config.default_lease_ttl ?? 0, 'config.default_lease_ttl'),
    max_lease_ttl: parseDuration(config.max_lease_ttl ?? 0, 'config.max_lease_ttl'),
  };
}

function readOptions(value: unknown): Record<string, string> {
  const options: Record<string, string> = {};
  for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string' && typeof v !== 'number') throw badRequest(`mount option "${k}" must be a string`);
    setOwn(options, k, String(v));
  }
  return options;
}

/**
 * Vault's rule for options.version in a tune: 1 or 2 only, never down. An engine without a version (KV mounted as
 * plain "kv") is at version 1.
 */
function checkVersionChange(current: string | undefined, wanted: string): { from: number; to: number } {
  const from = current === undefined || current.trim() === '' ? 1 : Number(current);
  const to = Number(wanted.trim() === '' ? '0' : wanted); // Vault parses "" as 0, which it then refuses
  if (!Number.isInteger(to)) throw badRequest(`unable to parse options: invalid version "${wanted}"`);
  if (to !== 1 && to !== 2) throw badRequest(`invalid version provided: ${to}`);
  if (from > to) throw badRequest(`cannot downgrade mount from version ${from}`);
  return { from, to };
}

const mountFields: Record<string, Field> = {
  path: { type: 'string', description: 'Where to mount, relative to /v1/ (or /v1/auth/ for auth methods).' },
  type: { type: 'string', description: 'The engine or auth method type, e.g. "kv", "kv-v2", "token".' },
  description: { type: 'string', description: 'A human-friendly description.' },
  config: { type: 'map', description: 'default_lease_ttl and max_lease_ttl.' },
  options: { type: 'map', description: 'Engine options, e.g. {"version": "2"} for KV.' },
  local: { type: 'bool', description: 'Not replicated (accepted for compatibility).' },
  seal_wrap: { type: 'bool', description: 'Accepted for compatibility.' },
  plugin_name: { type: 'string', description: 'Alias of type.' },
  external_entropy_access: { type: 'bool', description: 'Accepted for compatibility.' },
  plugin_version: { type: 'string', description: 'Accepted for compatibility.' },
  // node-vault's mount and enableAuth send the path they are given in the body too.
  mount_point: { type: 'string', description: 'Ignored: the path names the mount (some clients send it too).' },
};

const tuneFields: Record<string, Field> = {
  path: { type: 'string', description: 'The mount path.' },
  // Strings, not durations: "" leaves the TTL as it is and "system" resets it, as Vault's tune reads them.
  default_lease_ttl: { type: 'string', description: 'Default lease TTL ("" unchanged, "system" the default).' },
  max_lease_ttl: { type: 'string', description: 'Maximum lease TTL ("" unchanged, "system" the default).' },
  description: { type: 'string', description: 'A human-friendly description.' },
  options: {
    type: 'map',
    description: 'Engine options; an empty value removes one. KV: {"version": "2"} upgrades version 1 in place.',
  },
};

/**
 * Which mount a tune names. Vault's CLI tunes an auth method through sys/mounts/auth/<path>/tune; that is the
 * auth method's tune, and needs sudo as sys/auth/<path>/tune does.
 */
async function tuneTarget(core: Core, table: TableName, req: Request): Promise<{ table: TableName; path: string }> {
  const path = req.params.path ?? '';
  if (table !== 'mounts' || !path.startsWith('auth/')) return { table, path };
  const authPath = path.slice('auth/'.length);
  await requireSysAuthSudo(core, req, `sys/auth/${authPath}/tune`);
  return { table: 'auth', path: authPath };
}

/** Reaching an auth method through sys/mounts/auth/... needs the sudo its sys/auth/... path needs. */
async function requireSysAuthSudo(core: Core, req: Request, sysAuthPath: string): Promise<void> {
  const caller = req.caller;
  const acl = caller && !caller.root ? await core.policies.acl(caller.policies) : undefined;
  if (acl && !acl.check(sysAuthPath, req.operation === 'read' ? 'read' : 'update').sudo) {
    throw new CofreError(403, 'permission denied');
  }
}

/** sys/mounts and sys/auth share their shape; `table` picks which mount table they manage. */
function tablePaths(core: Core, table: TableName, base: 'mounts' | 'auth'): PathRecord[] {
  const mountPath = (req: Request): string => req.params.path ?? '';
  const list = async (): Promise<Response> => {
    const data: Record<string, unknown> = {};
    for (const m of core.mounts.all()) {
      if (m.table !== table) continue;
      if (table === 'mounts' || m.prefix.startsWith('auth/')) data[m.entry.path] = describe(m.entry);
    }
    // Vault's sys/mounts and sys/auth answers carry the mounts at the top level too (legacy clients read them there).
    return { data, mergeDataToTop: true };
  };
  return [
    {
      pattern: base,
      summary: `Lists the ${table === 'auth' ? 'auth methods' : 'secrets engines'}.`,
      operations: { read: list },
    },
    {
      pattern: `${base}/(?<path>.+?)/tune`,
      summary: 'Reads or changes a mount’s TTLs, description and options.',
      fields: tuneFields,
      // As in Vault, everything under sys/auth needs sudo: an auth method's TTLs bound every token it issues.
      sudo: table === 'auth',
      operations: {
        read: async (req) => {
          const target = await tuneTarget(core, table, req);
          const mounted = core.mounts.get(target.table, target.path);
          if (!mounted) throw badRequest(`cannot fetch sysview for path "${mountPath(req)}"`);
          return { data: tuneView(mounted.entry), mergeDataToTop: true };
        },
        update: async (req) => {
          const target = await tuneTarget(core, table, req);
          let versions: { from: number; to: number } | undefined;
          const upgraded = await core.mounts.tune(target.table, target.path, (entry) => {
            const ttl = (name: 'default_lease_ttl' | 'max_lease_ttl'): void => {
              // Vault's CLI sends "" for a TTL it leaves alone; "system" goes back to the system default.
              const value = req.data[name] as string | undefined;
              if (value === undefined || value.trim() === '') return;
              entry.config[name] = value.trim() === 'system' ? 0 : parseDuration(value, name);
            };
            ttl('default_lease_ttl');
            ttl('max_lease_ttl');
            if (typeof req.data.description === 'string') entry.description = req.data.description;
            const options = readOptions(req.data.options);
            if (options.version !== undefined) {
              versions = checkVersionChange(entry.options.version, options.version);
              options.version = String(versions.to); // " 2" or "2.0" is stored as the engine reads it: "2"
            }
            for (const [key, value] of Object.entries(options)) {
              // As Vault: an empty value removes the option, except the version, which cannot be unset.
              if (value === '' && key !== 'version') delete entry.options[key];
              else setOwn(entry.options, key, value);
            }
          });
          // Vault answers an upgrade with 200 and this warning (the KV engine converts its data meanwhile).
          if (upgraded && versions) {
            const warning =
              `Upgrading mount from version ${versions.from} to version ${versions.to}. ` +
              'This mount will be unavailable for a brief period and will resume service shortly.';
            return { data: null, warnings: [warning] };
          }
          return undefined;
        },
      },
    },
    {
      pattern: `${base}/(?<path>.+)`,
      summary: `Enables, reads or disables the ${table === 'auth' ? 'auth method' : 'secrets engine'} at a path.`,
      fields: mountFields,
      sudo: table === 'auth',
      rejectUnknownFields: true,
      operations: {
        read: async (req) => {
          // Vault reads sys/mounts/<path> as "the mount serving this path", so sys/mounts/auth/<path> is an auth
          // method (the Go client's Sys().GetAuth asks there); sys/auth/<path> is an auth method's own path.
          const mounted =
            table === 'mounts' ? core.mounts.match(mountPath(req)) : core.mounts.get(table, mountPath(req));
          if (!mounted) throw badRequest(`no mount at "${mountPath(req)}"`);
          if (table === 'mounts' && mounted.table === 'auth') {
            await requireSysAuthSudo(core, req, `sys/${mounted.prefix.replace(/\/$/, '')}`);
          }
          return { data: describe(mounted.entry), mergeDataToTop: true };
        },
        update: async (req) => {
          let type = (req.data.type as string | undefined) ?? (req.data.plugin_name as string | undefined) ?? '';
          if (type === '') throw badRequest('missing required field "type"');
          const options = readOptions(req.data.options);
          if (type === 'kv-v2') {
            type = 'kv';
            options.version = '2';
          }
          const entry = MountTable.newEntry(mountPath(req), type, {
            description: (req.data.description as string | undefined) ?? '',
            config: readConfig(req.data.config),
            options,
            local: (req.data.local as boolean | undefined) ?? false,
            seal_wrap: (req.data.seal_wrap as boolean | undefined) ?? false,
          });
          await core.mounts.mount(table, entry);
          return undefined;
        },
        delete: async (req) => {
          const mounted = core.mounts.get(table, mountPath(req));
          if (!mounted) {
            await core.mounts.unmount(table, mountPath(req));
            return undefined;
          }
          // Vault revokes a mount's leases before it goes: its credentials, and the tokens an auth method issued
          // (each a lease under the method's path), must not outlive it. No new lease is registered under it
          // meanwhile, and unmounting waits for the requests it is still serving (the backend's stop), so a
          // request racing the unmount cannot leave a lease behind on a mount that is gone.
          // Refused before anything is revoked: the cubbyhole's path also prefixes leases of wrapping tokens.
          assertRemovable(mounted);
          const end = await core.expiration.closeMount(mounted.prefix);
          try {
            await core.expiration.revokePrefix(mounted.prefix);
            await core.mounts.unmount(table, mountPath(req));
          } catch (err) {
            // The mount stays: it may issue leases again. The first error is the one to tell.
            await end(false).catch(() => undefined);
            throw err;
          }
          await end(true);
          return undefined;
        },
      },
    },
  ];
}

/**
 * sys/internal/ui/mounts/PATH: which mount serves a path and its options (clients use it to tell KV v1 from v2).
 * Any token may ask, but only about mounts it has some capability under, as in Vault.
 */
function uiMountPath(core: Core): PathRecord {
  return {
    pattern: 'internal/ui/mounts/(?<path>.+)',
    summary: 'The mount serving a path, with its type and options.',
    anyToken: true,
    operations: {
      read: async (req) => {
        const mounted = core.mounts.match(req.params.path ?? '');
        const acl = req.caller && (await core.policies.acl(req.caller.policies));
        if (!mounted || !acl?.grantsUnder(mounted.prefix)) throw new CofreError(403, 'permission denied');
        return { data: { ...describe(mounted.entry), path: mounted.prefix } };
      },
    },
  };
}

export function mountPaths(core: Core): PathRecord[] {
  return [...tablePaths(core, 'mounts', 'mounts'), ...tablePaths(core, 'auth', 'auth'), uiMountPath(core)];
}

import { randomUUID } from 'node:crypto';
import type { PathRecord, Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest, CofreError, notFound } from '../errors.js';
import { normalizeMountPath, type TableName } from '../mount-table.js';

/** Secrets engines that cannot be moved, nor moved under (Vault's protectedMounts). */
const PROTECTED_MOUNTS = ['audit/', 'auth/', 'sys/', 'cubbyhole/', 'identity/'];
/** Auth methods that cannot be moved, nor moved onto (Vault's protectedAuths). */
const PROTECTED_AUTHS = ['auth/token'];
/** Vault keeps migration statuses in memory; so does Cofre, the last ones only. */
const KEPT_MIGRATIONS = 100;

export interface MigrationInfo {
  source_mount: string;
  target_mount: string;
  status: 'in-progress' | 'success' | 'failure';
}

interface Move {
  table: TableName;
  /** Routing prefixes, with their trailing slash ("secret/", "auth/approle/"). */
  from: string;
  to: string;
}

/** A path as Vault's sanitizePath leaves it: no leading slash, one trailing slash. */
function sanitize(path: string): string {
  const trimmed = path.replace(/^\/+/, '');
  return trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

/** The mount table's own path of a routing prefix: auth methods are kept without their "auth/". */
function tablePath(table: TableName, prefix: string): string {
  return table === 'auth' ? prefix.slice('auth/'.length) : prefix;
}

function exactMount(core: Core, table: TableName, prefix: string): boolean {
  try {
    return core.mounts.get(table, tablePath(table, prefix)) !== undefined;
  } catch {
    return false; // not a valid mount path ("auth/" alone): nothing is mounted there
  }
}

/** Vault's checks, in Vault's order and with its messages; every refusal comes before anything changes. */
function plannedMove(core: Core, req: Request): Move {
  const fromRaw = (req.data.from as string | undefined) ?? '';
  const toRaw = (req.data.to as string | undefined) ?? '';
  if (fromRaw === '' || toRaw === '') throw badRequest("both 'from' and 'to' path must be specified as a string");
  if (fromRaw.trim() !== fromRaw) throw badRequest("'from' path cannot contain trailing whitespace");
  if (toRaw.trim() !== toRaw) throw badRequest("'to' path cannot contain trailing whitespace");
  const from = sanitize(fromRaw);
  let to: string;
  try {
    to = normalizeMountPath(toRaw);
  } catch (err) {
    throw badRequest(`invalid destination mount: ${err instanceof Error ? err.message : String(err)}`);
  }
  const table: TableName = from.startsWith('auth/') ? 'auth' : 'mounts';
  if (table === 'auth') {
    if (!to.startsWith('auth/')) throw badRequest(`cannot remount auth mount to non-auth mount "${to}"`);
    if (PROTECTED_AUTHS.some((p) => from.startsWith(p))) throw badRequest(`cannot remount "${from}"`);
    if (PROTECTED_AUTHS.some((p) => to.startsWith(p))) throw badRequest(`cannot remount to destination "${to}"`);
  } else {
    for (const p of PROTECTED_MOUNTS) {
      if (from.startsWith(p)) throw badRequest(`cannot remount "${from}"`);
      if (to.startsWith(p)) throw badRequest(`cannot remount to destination "${to}"`);
    }
  }
  // An exact mount only: Vault would take the mount serving "secret/foo/" for it, and move all of "secret/".
  if (!exactMount(core, table, from)) throw badRequest(`no matching mount at "${from}"`);
  const conflict = core.mounts.conflictWith(to);
  if (conflict !== undefined) throw badRequest(`path already in use at "${conflict}"`);
  return { table, from, to };
}

/**
 * sys/remount: moves a secrets engine or an auth method, as Vault 1.10+ does. The mount keeps its UUID, so its
 * storage (keyed by UUID) and its configuration stay as they are, and policies are not rewritten. Its leases are
 * revoked first, as Vault revokes them: the secrets a moved engine handed out, and the tokens a moved auth method
 * issued. Meanwhile no new lease can be registered under the old path. Vault moves asynchronously; Cofre moves
 * before it answers, and the status it records is already final.
 */
export function remountPaths(core: Core): PathRecord[] {
  const migrations = new Map<string, MigrationInfo>();

  const record = (id: string, info: MigrationInfo): void => {
    migrations.set(id, info);
    for (const old of migrations.keys()) {
      if (migrations.size <= KEPT_MIGRATIONS) break;
      migrations.delete(old);
    }
  };

  const move = async (plan: Move): Promise<void> => {
    const mountId = core.mounts.get(plan.table, tablePath(plan.table, plan.from))?.entry.uuid;
    const end = await core.expiration.closeMount(plan.from);
    try {
      await core.expiration.revokePrefix(plan.from);
      if (mountId) await core.expiration.clearClosed(mountId, plan.to);
      await core.mounts.remount(plan.table, tablePath(plan.table, plan.from), tablePath(plan.table, plan.to));
    } catch (err) {
      await end(false).catch(() => undefined);
      throw err;
    }
    await end(true);
  };

  const remount = async (req: Request): Promise<Response> => {
    const plan = plannedMove(core, req);
    const id = randomUUID();
    const info: MigrationInfo = { source_mount: plan.from, target_mount: plan.to, status: 'in-progress' };
    record(id, info);
    try {
      await move(plan);
      info.status = 'success';
      // Vault's sys/remount answer carries migration_id at the top level too, as its API docs show it.
      return { data: { migration_id: id }, mergeDataToTop: true };
    } catch (err) {
      // As in Vault, a move that fails once started is reported through its status; the mount stays where it was.
      info.status = 'failure';
      // An internal error goes on as one: the server logs it and answers 500 with the request ID only.
      if (!(err instanceof CofreError)) throw err;
      const warnings = [`the mount was not moved: ${err.message}`];
      return { data: { migration_id: id }, warnings, mergeDataToTop: true };
    }
  };

  return [
    {
      pattern: 'remount',
      summary: 'Moves a secrets engine or an auth method to a new path; its leases are revoked.',
      // As in Vault: moving a mount needs sudo besides update on sys/remount.
      sudo: true,
      fields: {
        from: { type: 'string', description: 'The current mount path ("secret", "auth/approle").' },
        to: { type: 'string', description: 'The new mount path ("kv", "auth/ci").' },
      },
      operations: { update: remount },
    },
    {
      pattern: 'remount/status/(?<migration_id>.+)',
      summary: 'The status of a mount move: in-progress, success or failure.',
      fields: { migration_id: { type: 'string', description: 'The ID sys/remount answered with.' } },
      operations: {
        read: async (req) => {
          const id = req.params.migration_id ?? '';
          const info = migrations.get(id);
          if (!info) throw notFound();
          return { data: { migration_id: id, migration_info: { ...info } } };
        },
      },
    },
  ];
}

import type { Field, PathRecord, Request } from '../../core/backend.js';
import { badRequest, CofreError, notFound } from '../../core/errors.js';
import type { Storage } from '../../core/storage.js';
import { changeJson } from '../../core/json-change.js';
import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import { databaseFailure, type Connections } from './connections.js';
import { DatabaseError } from './drivers/driver.js';
import { nextRotation, RETRY_MS, type StaticRotation } from './static-rotation.js';
import { STATIC_ROLE_PREFIX, type StaticRole } from './types.js';
import { checkCredentialType, fieldsOver } from './request-fields.js';

const MIN_PERIOD = 5;

const staticRoleFields: Record<string, Field> = {
  name: { type: 'string', description: 'The static role name.' },
  username: { type: 'string', description: 'The existing database user whose password Cofre rotates.' },
  db_name: { type: 'string', description: 'The database connection the user lives on.' },
  rotation_period: { type: 'duration', description: `Rotate this often (at least ${MIN_PERIOD}s).` },
  rotation_schedule: { type: 'string', description: 'Rotate on this cron schedule (UTC), instead of a period.' },
  rotation_window: { type: 'duration', description: 'Accepted for compatibility; rotation starts on schedule.' },
  rotation_statements: {
    type: 'string-slice',
    description: "Statements that set the password ({{name}}, {{password}}); default: the plugin's own.",
  },
  credential_type: { type: 'string', description: 'Only "password" is supported.' },
};

const iso = (ms: number): string => new Date(ms).toISOString();

/** When a static role rotates, as static-roles/ and static-creds/ both show it. */
function rotationFields(role: StaticRole): Record<string, unknown> {
  return {
    ...(role.rotation_schedule
      ? { rotation_schedule: role.rotation_schedule }
      : { rotation_period: role.rotation_period }),
    last_vault_rotation: role.last_vault_rotation ? iso(role.last_vault_rotation) : null,
  };
}

/**
 * A new role's first rotation failed. The role is kept with its new password pending: the failure may have come
 * after the database took the password (the connection dropped after the change committed), and removing the role
 * would leave a user whose password no one knows. The schedule retries with the same password until it succeeds.
 */
function firstRotationFailed(name: string, err: unknown): never {
  if (!(err instanceof DatabaseError)) throw err;
  throw new CofreError(
    err.unreachable ? 502 : 500,
    `static role "${name}" is stored, but setting its first password failed; it is retried every ` +
      `${RETRY_MS / 1000} s until it succeeds: ${err.message}`,
  );
}

/**
 * static-creds/ of a role whose password is not settled. Before the first rotation succeeded there is no password
 * to give; after a later rotation failed, the stored one may already have been replaced on the database.
 */
function unsettled(name: string, role: StaticRole): { warnings?: string[] } {
  if (role.password === '') {
    const last = role.last_rotation_error ? ` (last error: ${role.last_rotation_error})` : '';
    throw new CofreError(
      503,
      `static role "${name}" has no password yet: its first rotation is pending and retried automatically${last}`,
    );
  }
  if (!role.pending_password || !role.last_rotation_error) return {};
  return {
    warnings: [
      `a rotation of this password failed and is being retried: the database may already use the new password ` +
        `(last error: ${role.last_rotation_error})`,
    ],
  };
}

function validateSchedule(role: StaticRole): void {
  if (role.rotation_period > 0 === (role.rotation_schedule !== '')) {
    throw badRequest('exactly one of rotation_period and rotation_schedule must be set');
  }
  if (role.rotation_schedule === '' && role.rotation_period < MIN_PERIOD) {
    throw badRequest(`rotation_period must be ${MIN_PERIOD} seconds or more`);
  }
  try {
    nextRotation(role, Date.now());
  } catch (err) {
    throw badRequest(`invalid rotation_schedule: ${(err as Error).message}`);
  }
}

export function staticRolePaths(storage: Storage, connections: Connections, rotation: StaticRotation): PathRecord[] {
  const nameOf = (req: Request): string => req.params.name ?? '';
  const mustRead = async (name: string): Promise<StaticRole> => {
    const role = await rotation.read(name);
    if (!role) throw notFound(`static role "${name}" does not exist`);
    return role;
  };

  /**
   * Committed on the role as stored then (changeJson): a rotation on another node, or a delete, that lands while this
   * write is checked is not undone, and a role deleted or made since the request was authorised asks the ACL again.
   */
  const write = (req: Request) =>
    rotation.serialize(nameOf(req), async () => {
      const name = nameOf(req);
      let created = false;
      const role = await changeJson<StaticRole>(storage, STATIC_ROLE_PREFIX + name, async (existing) => {
        await assertExistenceAsAuthorised(req, existing !== undefined);
        created = !existing;
        return roleFrom(req, name, existing);
      });
      rotation.reschedule(name, role);
      return { name, created };
    });

  const roleFrom = async (req: Request, name: string, existing: StaticRole | undefined): Promise<StaticRole> => {
    const d = req.data;
    const pick = fieldsOver(d);
    if (existing && d.username !== undefined && d.username !== existing.username) {
      throw badRequest('cannot change the username of a static role');
    }
    if (existing && d.db_name !== undefined && d.db_name !== existing.db_name) {
      throw badRequest('cannot change the db_name of a static role');
    }
    checkCredentialType(d);
    const schedule = d.rotation_schedule !== undefined || d.rotation_period !== undefined;
    const role: StaticRole = {
      db_name: pick('db_name', existing?.db_name ?? ''),
      username: pick('username', existing?.username ?? ''),
      rotation_statements: pick('rotation_statements', existing?.rotation_statements ?? []),
      rotation_period: schedule ? pick('rotation_period', 0) : (existing?.rotation_period ?? 0),
      rotation_schedule: schedule ? pick('rotation_schedule', '') : (existing?.rotation_schedule ?? ''),
      password: existing?.password ?? '',
      last_vault_rotation: existing?.last_vault_rotation ?? 0,
      next_rotation: 0,
      last_rotation_error: existing?.last_rotation_error ?? '',
      ...(existing?.pending_password ? { pending_password: existing.pending_password } : {}),
    };
    if (role.username === '') throw badRequest('username is required');
    if (role.db_name === '') throw badRequest('db_name is required');
    validateSchedule(role);
    const config = await connections.read(role.db_name);
    if (!config) throw badRequest(`database connection "${role.db_name}" does not exist`);
    if (!config.allowed_roles.includes('*') && !config.allowed_roles.includes(name)) {
      throw badRequest(`"${name}" is not an allowed role`);
    }
    role.next_rotation = nextRotation(role, role.last_vault_rotation || Date.now());
    return role;
  };

  return [
    {
      pattern: 'static-roles/?',
      summary: 'Lists static roles.',
      operations: { list: async () => ({ data: { keys: await storage.list(STATIC_ROLE_PREFIX) } }) },
    },
    {
      pattern: 'static-roles/(?<name>[^/]+)',
      summary: 'Configures a static role: an existing database user whose password Cofre rotates.',
      fields: staticRoleFields,
      exists: async (req) => (await rotation.read(nameOf(req))) !== undefined,
      operations: {
        read: async (req) => {
          const role = await mustRead(nameOf(req));
          return {
            data: {
              username: role.username,
              db_name: role.db_name,
              rotation_statements: role.rotation_statements,
              ...rotationFields(role),
              next_vault_rotation: iso(role.next_rotation),
              last_rotation_error: role.last_rotation_error,
              credential_type: 'password',
            },
          };
        },
        update: async (req) => {
          const { name, created } = await write(req);
          // Vault takes over the user's password at once: only Cofre knows it from then on.
          if (created) await rotation.rotate(name).catch((err: unknown) => firstRotationFailed(name, err));
          return undefined;
        },
        delete: async (req) => {
          await rotation.remove(nameOf(req));
          return undefined;
        },
      },
    },
    {
      pattern: 'static-creds/(?<name>[^/]+)',
      summary: "A static role's current username and password.",
      fields: { name: staticRoleFields.name! },
      operations: {
        read: async (req) => {
          const role = await mustRead(nameOf(req));
          return {
            ...unsettled(nameOf(req), role),
            data: {
              username: role.username,
              password: role.password,
              ...rotationFields(role),
              ttl: Math.max(0, Math.round((role.next_rotation - Date.now()) / 1000)),
            },
          };
        },
      },
    },
    {
      pattern: 'rotate-role/(?<name>[^/]+)',
      summary: "Rotates a static role's password now.",
      fields: { name: staticRoleFields.name! },
      // The rotation itself reports the change, at static-creds/<name> where it can be read (static-rotation.ts).
      changeScope: () => undefined,
      operations: {
        update: async (req) => {
          await mustRead(nameOf(req));
          await rotation.rotate(nameOf(req)).catch(databaseFailure);
          return undefined;
        },
      },
    },
  ];
}

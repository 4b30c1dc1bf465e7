import type { LeaseContext, PathRecord, Request, SecretType, SystemView } from '../../core/backend.js';
import { badRequest, CofreError } from '../../core/errors.js';
import { resolveTtl } from '../../core/expiration.js';
import type { Storage } from '../../core/storage.js';
import { databaseFailure, type Connections } from './connections.js';
import { renderUsername } from './drivers/username-template.js';
import type { DatabaseDriver } from './drivers/driver.js';
import { dropFresh, type FreshCredentials } from './fresh-credentials.js';
import { readRole } from './path-roles.js';
import type { ConnectionConfig, DynamicRole } from './types.js';

/** What a dynamic credential's lease remembers: enough to drop the user, and never its password. */
interface CredsInternal {
  username: string;
  role: string;
  db_name: string;
}

function allowed(config: ConnectionConfig, role: string): boolean {
  return config.allowed_roles.includes('*') || config.allowed_roles.includes(role);
}

/** creds/<role>: a new database user with a fresh password, under a lease. */
export function credsPaths(
  storage: Storage,
  connections: Connections,
  system: SystemView,
  fresh: FreshCredentials,
): PathRecord[] {
  const issue = async (req: Request) => {
    const name = req.params.name ?? '';
    const role = await readRole(storage, name);
    if (!role) throw badRequest(`unknown role: ${name}`);
    const config = await connections.read(role.db_name);
    if (!config) throw badRequest(`database connection "${role.db_name}" does not exist`);
    if (!allowed(config, name)) throw badRequest(`"${name}" is not an allowed role`);
    const { username, password } = await connections
      .use(role.db_name, async (driver) => {
        let username: string;
        try {
          username = renderUsername(
            role.username_template || config.username_template || driver.defaultUsernameTemplate,
            { roleName: name, displayName: req.caller?.displayName ?? '' },
            driver.maxUsernameLength,
          );
        } catch (err) {
          throw badRequest((err as Error).message);
        }
        const password = await system.generatePassword(config.password_policy || undefined);
        const mount = system.leaseTtls();
        const { ttl } = resolveTtl(
          { ttl: role.default_ttl, maxTtl: role.max_ttl },
          { default_lease_ttl: mount.defaultTtl, max_lease_ttl: mount.maxTtl },
        );
        await driver.newUser({
          statements: role.creation_statements,
          rollbackStatements: role.rollback_statements,
          username,
          password,
          expiration: new Date(Date.now() + ttl * 1000),
        });
        return { username, password };
      })
      .catch(databaseFailure);
    const internal: CredsInternal = { username, role: name, db_name: role.db_name };
    // The core hands this very object back to revoke() if it cannot put the secret under a lease.
    const secretInternal = { ...internal };
    fresh.remember(secretInternal, { config, role });
    return {
      data: { username, password },
      secret: {
        type: 'creds',
        internal: secretInternal,
        ttl: role.default_ttl,
        maxTtl: role.max_ttl,
        renewable: true,
      },
    };
  };
  return [
    {
      pattern: 'creds/(?<name>[^/]+)',
      summary: 'Creates a database user for the role, under a lease.',
      fields: { name: { type: 'string', description: 'The role name.' } },
      operations: { read: (req) => fresh.track(issue(req)) },
    },
  ];
}

/** How the expiration manager renews and revokes what creds/ handed out. */
export function credsSecret(storage: Storage, connections: Connections, fresh: FreshCredentials): SecretType {
  const withTarget = async <T>(
    lease: LeaseContext,
    operation: (target: {
      internal: CredsInternal;
      role: DynamicRole | undefined;
      driver: DatabaseDriver;
    }) => Promise<T>,
  ): Promise<T> => {
    const internal = lease.internal as unknown as CredsInternal;
    // The role may be gone by now: its user still has to go, with the plugin's default statements.
    const role = await readRole(storage, internal.role);
    return connections.use(internal.db_name, (driver) => operation({ internal, role, driver }));
  };
  return {
    async revoke(lease) {
      // A user whose lease the core could not store: dropped without the mount's storage or pools.
      const issued = fresh.take(lease.internal);
      if (issued) return dropFresh(issued, (lease.internal as unknown as CredsInternal).username);
      await withTarget(lease, ({ internal, role, driver }) =>
        driver.revokeUser({ statements: role?.revocation_statements ?? [], username: internal.username }),
      );
    },
    async renew(lease) {
      await withTarget(lease, async ({ internal, role, driver }) => {
        if (!role) throw new CofreError(400, `role "${internal.role}" no longer exists`);
        await driver.renewUser({
          statements: role.renew_statements,
          username: internal.username,
          expiration: lease.expireTime,
        });
      });
    },
  };
}

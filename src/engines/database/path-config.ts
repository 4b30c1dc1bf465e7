import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import type { Field, PathRecord, Request, SystemView } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { Connections, databaseFailure } from './connections.js';
import { DatabaseError } from './drivers/driver.js';
import type { ConnectionConfig } from './types.js';
import { fieldsOver } from './request-fields.js';

const configFields: Record<string, Field> = {
  name: { type: 'string', description: 'The connection name.' },
  plugin_name: {
    type: 'string',
    description: 'postgresql-database-plugin or mysql-database-plugin.',
  },
  plugin_version: { type: 'string', description: 'Accepted for compatibility; ignored.' },
  connection_url: {
    type: 'string',
    description: 'Connection URL or DSN; {{username}} and {{password}} are filled from username and password.',
  },
  username: { type: 'string', description: "Cofre's user on the database." },
  password: { type: 'string', description: "Cofre's password on the database (never returned)." },
  verify_connection: { type: 'bool', default: true, description: 'Connect once before storing the config.' },
  allowed_roles: { type: 'string-list', description: 'Roles that may use this connection; "*" for all.' },
  root_rotation_statements: {
    type: 'string-slice',
    description: "Statements rotate-root runs to change Cofre's password ({{username}}, {{password}}).",
  },
  password_policy: { type: 'string', description: 'The password policy for generated passwords.' },
  username_template: { type: 'string', description: 'Template for dynamic usernames.' },
  max_open_connections: { type: 'int', default: 4, description: 'Size of the connection pool.' },
  max_idle_connections: { type: 'int', description: 'Accepted for compatibility; the pool closes idle connections.' },
  max_connection_lifetime: { type: 'duration', default: 0, description: 'Close pooled connections after this.' },
};

/**
 * The URL as a reader may see it: a password written into it is masked. The {{password}} placeholder is not a
 * password and stays, as Vault shows it, so the URL read back can be edited and written again. The password is
 * whatever lies between the first ":" of the credentials and the last "@" (as both the URL parser and the MySQL DSN
 * parser split them): a password holding "@" or "(", or a DSN to a socket or with no address, was shown in clear
 * before. Masking too much (an "@" further on, in a query) only shortens what is shown.
 */
export function maskedUrl(url: string): string {
  const start = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0].length ?? 0;
  const at = url.lastIndexOf('@');
  if (at < start) return url;
  const colon = url.indexOf(':', start);
  if (colon < 0 || colon > at) return url;
  const secret = url.slice(colon + 1, at);
  return `${url.slice(0, colon + 1)}${secret === '{{password}}' ? secret : '*****'}${url.slice(at)}`;
}

function present(config: ConnectionConfig): Record<string, unknown> {
  return {
    plugin_name: config.plugin_name,
    plugin_version: '',
    connection_details: {
      connection_url: maskedUrl(config.connection_url),
      username: config.username,
      max_open_connections: config.max_open_connections,
      max_connection_lifetime: `${config.max_connection_lifetime}s`,
    },
    allowed_roles: config.allowed_roles,
    root_credentials_rotate_statements: config.root_rotation_statements,
    password_policy: config.password_policy,
    username_template: config.username_template,
    verify_connection: config.verify_connection,
  };
}

/** A config from a write, over the stored one (Vault updates a connection field by field). */
function configFrom(req: Request, name: string, existing: ConnectionConfig | undefined): ConnectionConfig {
  const d = req.data;
  const pick = fieldsOver(d);
  const config: ConnectionConfig = {
    name,
    plugin_name: pick('plugin_name', existing?.plugin_name ?? ''),
    connection_url: pick('connection_url', existing?.connection_url ?? ''),
    username: pick('username', existing?.username ?? ''),
    password: pick('password', existing?.password ?? ''),
    allowed_roles: pick('allowed_roles', existing?.allowed_roles ?? []),
    root_rotation_statements: pick('root_rotation_statements', existing?.root_rotation_statements ?? []),
    password_policy: pick('password_policy', existing?.password_policy ?? ''),
    username_template: pick('username_template', existing?.username_template ?? ''),
    verify_connection: pick('verify_connection', true),
    max_open_connections: pick('max_open_connections', existing?.max_open_connections ?? 4),
    max_connection_lifetime: pick('max_connection_lifetime', existing?.max_connection_lifetime ?? 0),
  };
  if (config.plugin_name === '') throw badRequest('plugin_name is required');
  if (config.connection_url === '') throw badRequest('connection_url is required');
  if (existing && existing.plugin_name !== config.plugin_name) {
    throw badRequest('cannot change plugin_name of an existing connection; delete it first');
  }
  if (config.max_open_connections < 1) throw badRequest('max_open_connections must be at least 1');
  if (existing?.pending_password) config.pending_password = existing.pending_password;
  return config;
}

export function configPaths(connections: Connections, system: SystemView): PathRecord[] {
  // The password policy must exist; with verify_connection, the database must accept the config's login.
  const checkConfig = async (config: ConnectionConfig): Promise<void> => {
    if (config.password_policy) await system.generatePassword(config.password_policy);
    if (!config.verify_connection) return;
    const driver = Connections.forConfig(config);
    try {
      await driver.verify();
    } catch (err) {
      // The request is what is wrong here (as in Vault): nothing is stored until the connection works.
      if (err instanceof DatabaseError) throw badRequest(`${err.message} (verify_connection is on)`);
      throw err;
    } finally {
      await driver.close();
    }
  };
  const nameOf = (req: Request): string => req.params.name ?? '';
  return [
    {
      pattern: 'config/?',
      summary: 'Lists database connections.',
      operations: { list: async () => ({ data: { keys: await connections.list() } }) },
    },
    {
      pattern: 'config/(?<name>[^/]+)',
      summary: 'Configures a database connection.',
      fields: configFields,
      exists: async (req) => (await connections.read(nameOf(req))) !== undefined,
      operations: {
        read: async (req) => ({ data: present(await connections.mustRead(nameOf(req))) }),
        // Checked (the password policy exists, the connection works) before anything is stored, then committed on
        // the config stored at that moment: one deleted or made since the request was authorised asks the ACL again
        // (a token that may only update must not bring back a deleted connection with its stored credentials), and
        // one changed meanwhile is checked again as merged.
        update: async (req) => {
          const name = nameOf(req);
          const checked = configFrom(req, name, await connections.read(name));
          await checkConfig(checked);
          await connections.change(name, async (current) => {
            await assertExistenceAsAuthorised(req, current !== undefined);
            const config = configFrom(req, name, current);
            if (JSON.stringify(config) !== JSON.stringify(checked)) await checkConfig(config);
            return config;
          });
          return undefined;
        },
        delete: async (req) => {
          await connections.delete(nameOf(req));
          return undefined;
        },
      },
    },
    {
      pattern: 'reset/(?<name>[^/]+)',
      summary: 'Closes the connection pool and opens a new one from the stored config.',
      fields: { name: configFields.name! },
      operations: {
        update: async (req) => {
          await connections.mustRead(nameOf(req));
          await connections.reset(nameOf(req));
          await connections.use(nameOf(req), async () => {}).catch(databaseFailure);
          return undefined;
        },
      },
    },
    {
      pattern: 'rotate-root/(?<name>[^/]+)',
      summary: "Changes Cofre's own password on the database to one that only Cofre knows.",
      fields: { name: configFields.name! },
      operations: {
        update: async (req) => {
          const name = nameOf(req);
          if ((await connections.mustRead(name)).username === '') {
            throw badRequest('rotate-root needs the connection to have a username');
          }
          // The pool is opened (a rotation cut short settled) before the new password is claimed.
          const { username, password } = await connections
            .use(name, async (driver) => {
              const { config, password } = await connections.claimRootRotation(name, (policy) =>
                system.generatePassword(policy || undefined),
              );
              try {
                await driver.setPassword({
                  statements: config.root_rotation_statements,
                  username: config.username,
                  password,
                });
              } catch (err) {
                // The change may or may not have reached the database: the next pool tries both passwords.
                await connections.reset(name);
                throw err;
              }
              return { username: config.username, password };
            })
            .catch(databaseFailure);
          await connections.finishRootRotation(name, username, password);
          return undefined;
        },
      },
    },
  ];
}

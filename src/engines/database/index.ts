import type { Backend, BackendFactory } from '../../core/backend.js';
import { Connections } from './connections.js';
import { configPaths } from './path-config.js';
import { FreshCredentials } from './fresh-credentials.js';
import { credsPaths, credsSecret } from './path-creds.js';
import { rolePaths } from './path-roles.js';
import { staticRolePaths } from './path-static-roles.js';
import { StaticRotation } from './static-rotation.js';
import { CONFIG_PREFIX, STATIC_ROLE_PREFIX } from './types.js';

/**
 * The database secrets engine, Vault's API: connections (config/), dynamic roles whose users live as long as
 * their lease (roles/, creds/), and static roles whose existing users' passwords Cofre rotates on a schedule
 * (static-roles/, static-creds/, rotate-role/).
 */
export const databaseFactory: BackendFactory = ({ storage, system }): Backend => {
  const connections = new Connections(storage);
  const rotation = new StaticRotation(storage, connections, system);
  const fresh = new FreshCredentials();
  return {
    type: 'database',
    help:
      'Generates database credentials: connections (config/), dynamic roles whose users live as long as their ' +
      'lease (roles/, creds/), and static roles whose existing users have their passwords rotated (static-roles/, ' +
      'static-creds/, rotate-role/).',
    paths: [
      ...configPaths(connections, system),
      ...rolePaths(storage, connections),
      ...credsPaths(storage, connections, system, fresh),
      ...staticRolePaths(storage, connections, rotation),
    ],
    secrets: { creds: credsSecret(storage, connections, fresh) },
    // A failure to read the roles (sealed mid-way) must not end the process; the next start reads them again.
    start: () => void rotation.start().catch(() => undefined),
    stop: async () => {
      rotation.stop();
      // A user being created is finished (or rolled back) on its pool before the pool closes; an unmount waits.
      await fresh.drain();
      await connections.closeAll();
    },
    // Another node changed a connection (rotate-root: the pool must use the new password) or a static role.
    invalidate: (key) => {
      if (key.startsWith(CONFIG_PREFIX)) void connections.reset(key.slice(CONFIG_PREFIX.length));
      else if (key.startsWith(STATIC_ROLE_PREFIX)) {
        void rotation.refresh(key.slice(STATIC_ROLE_PREFIX.length)).catch(() => undefined);
      }
    },
  };
};

/** The database plugins Cofre has, by the names Vault gives them in `plugin_name`. */
import type { ConnectionSettings, DatabaseDriver, PluginName } from './driver.js';
import { mysqlDriver } from './mysql.js';
import { postgresDriver } from './postgres.js';

const DRIVERS: Record<PluginName, (settings: ConnectionSettings) => DatabaseDriver> = {
  'postgresql-database-plugin': postgresDriver,
  'mysql-database-plugin': mysqlDriver,
};

export const SUPPORTED_PLUGINS = Object.keys(DRIVERS) as PluginName[];

export function isPluginName(name: string): name is PluginName {
  return Object.hasOwn(DRIVERS, name);
}

/** Opens no connection: the pool connects on first use (verify() to check the settings at once). */
export function createDriver(plugin: string, settings: ConnectionSettings): DatabaseDriver {
  if (!isPluginName(plugin))
    throw new Error(`unsupported plugin_name "${plugin}" (supported: ${SUPPORTED_PLUGINS.join(', ')})`);
  return DRIVERS[plugin](settings);
}

export { DatabaseError } from './driver.js';
export type { ConnectionSettings, DatabaseDriver, NewUser, PluginName } from './driver.js';
export { renderUsername } from './username-template.js';

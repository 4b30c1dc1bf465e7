import type { Storage } from '../../core/storage.js';
import { CofreError, notFound } from '../../core/errors.js';
import { changeJson } from '../../core/json-change.js';
import { getJson, putJson } from '../../core/storage-view.js';
import { createDriver } from './drivers/index.js';
import { DatabaseError, type DatabaseDriver } from './drivers/driver.js';
import { CONFIG_PREFIX, type ConnectionConfig } from './types.js';

/**
 * The mount's database connections: their configs in storage and one pooled driver per config, opened on first
 * use and closed when the config changes, is reset or deleted.
 */
export class Connections {
  private readonly drivers = new Map<string, Promise<DatabaseDriver>>();

  constructor(private readonly storage: Storage) {}

  async read(name: string): Promise<ConnectionConfig | undefined> {
    return getJson<ConnectionConfig>(this.storage, CONFIG_PREFIX + name);
  }

  async mustRead(name: string): Promise<ConnectionConfig> {
    const config = await this.read(name);
    if (!config) throw notFound(`database connection "${name}" does not exist`);
    return config;
  }

  list(): Promise<string[]> {
    return this.storage.list(CONFIG_PREFIX);
  }

  /** Stores a config; the next use opens a pool with it. */
  async write(config: ConnectionConfig): Promise<void> {
    await putJson(this.storage, CONFIG_PREFIX + config.name, config);
    await this.reset(config.name);
  }

  /**
   * Writes a config on the one stored when the write commits (changeJson: undefined from `change` writes nothing),
   * then closes the pool as write() does.
   */
  async change(
    name: string,
    change: (current: ConnectionConfig | undefined) => Promise<ConnectionConfig | undefined>,
  ): Promise<void> {
    if ((await changeJson<ConnectionConfig>(this.storage, CONFIG_PREFIX + name, change)) !== undefined) {
      await this.reset(name);
    }
  }

  /** Stores a config and keeps the open pool (rotate-root's bookkeeping while it uses that pool). */
  async record(config: ConnectionConfig): Promise<void> {
    await putJson(this.storage, CONFIG_PREFIX + config.name, config);
  }

  async delete(name: string): Promise<void> {
    await this.storage.delete(CONFIG_PREFIX + name);
    await this.reset(name);
  }

  /** Closes the pool; the next use opens a new one from the stored config. */
  async reset(name: string): Promise<void> {
    const driver = this.drivers.get(name);
    this.drivers.delete(name);
    if (driver) await (await driver.catch(() => undefined))?.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.drivers.keys()].map((name) => this.reset(name)));
  }

  /** The pooled driver of a connection. */
  async driver(name: string): Promise<DatabaseDriver> {
    let driver = this.drivers.get(name);
    if (!driver) {
      driver = this.open(name);
      this.drivers.set(name, driver);
      driver.catch(() => this.drivers.delete(name));
    }
    return driver;
  }

  /** A driver for a config that is not (yet) stored: to verify it before it is written. */
  static forConfig(config: ConnectionConfig, password = config.password): DatabaseDriver {
    try {
      return createDriver(config.plugin_name, {
        name: config.name,
        connectionUrl: config.connection_url,
        username: config.username,
        password,
        maxOpenConnections: config.max_open_connections,
        maxConnectionLifetime: config.max_connection_lifetime,
      });
    } catch (err) {
      throw new CofreError(400, (err as Error).message);
    }
  }

  private async open(name: string): Promise<DatabaseDriver> {
    const config = await this.mustRead(name);
    if (config.pending_password) return this.finishRootRotation(config);
    return Connections.forConfig(config);
  }

  /**
   * A rotate-root was cut short between storing the new password and making it the current one. Whichever of
   * the two the database accepts is the root password now.
   */
  private async finishRootRotation(config: ConnectionConfig): Promise<DatabaseDriver> {
    const { pending_password: pending, ...settled } = config;
    let failure: unknown;
    for (const password of [pending!, config.password]) {
      const driver = Connections.forConfig(config, password);
      try {
        await driver.verify();
      } catch (err) {
        failure = err;
        await driver.close();
        continue;
      }
      await putJson(this.storage, CONFIG_PREFIX + config.name, { ...settled, password });
      return driver;
    }
    // Neither works (the database is down, most likely): both stay on record for the next attempt.
    throw failure;
  }
}

/** Turns a driver's failure into the client's error: its message is safe (it names the connection, no secrets). */
export function databaseFailure(err: unknown): never {
  if (err instanceof DatabaseError) throw new CofreError(err.unreachable ? 502 : 500, err.message);
  throw err;
}

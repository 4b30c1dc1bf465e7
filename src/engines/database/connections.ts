import type { Storage } from '../../core/storage.js';
import { CofreError, notFound } from '../../core/errors.js';
import { changeJson } from '../../core/json-change.js';
import { getJson } from '../../core/storage-view.js';
import { createDriver } from './drivers/index.js';
import { DatabaseError, type DatabaseDriver } from './drivers/driver.js';
import { CONFIG_PREFIX, type ConnectionConfig } from './types.js';

/** One connection's pooled driver and the operations using it now. */
interface Pool {
  driver: Promise<DatabaseDriver>;
  users: number;
  /** Replaced or reset: no new operation gets it, and it closes when its last one ends. */
  retired: boolean;
}

/**
 * The mount's database connections: their configs in storage and one pooled driver per config, opened on first
 * use and retired when the config changes, is reset or deleted. A retired pool closes once the operations using it
 * end: closing it under them (a config written while a rotate-root waits on its ALTER) failed them half-way, with
 * the database changed and the store not.
 */
export class Connections {
  private readonly pools = new Map<string, Pool>();

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

  /**
   * Writes a config on the one stored when the write commits (changeJson: undefined from `change` writes nothing),
   * then closes the pool: the next use opens one with the new config.
   */
  async change(
    name: string,
    change: (current: ConnectionConfig | undefined) => Promise<ConnectionConfig | undefined>,
  ): Promise<void> {
    if ((await changeJson<ConnectionConfig>(this.storage, CONFIG_PREFIX + name, change)) !== undefined) {
      await this.reset(name);
    }
  }

  /**
   * rotate-root's first step: the new root password on record as pending before the database changes, so that a
   * crash in between does not lose it. Committed on the config as stored then (changeJson), so that a rotation
   * neither undoes a config change nor makes a deleted connection again. A pending password already on record (a
   * rotation under way on another node, or one cut short) is used again rather than replaced: two rotations racing
   * then set the same password, where two different ones could reach the database in one order and the store in the
   * other, leaving a root password that no one knows.
   */
  async claimRootRotation(
    name: string,
    generate: (passwordPolicy: string) => Promise<string>,
  ): Promise<{ config: ConnectionConfig; password: string }> {
    const claimed = await changeJson<ConnectionConfig>(this.storage, CONFIG_PREFIX + name, async (current) => {
      if (!current) throw notFound(`database connection "${name}" does not exist`);
      if (current.username === '') throw new CofreError(400, 'rotate-root needs the connection to have a username');
      return current.pending_password
        ? current
        : { ...current, pending_password: await generate(current.password_policy) };
    });
    return { config: claimed!, password: claimed!.pending_password! };
  }

  /**
   * rotate-root's last step, once the database took `password` for `username`: it becomes the connection's
   * password on the config as stored now, which keeps changes made meanwhile. A connection deleted meanwhile is not
   * made again (its credentials would come back with it); one whose username was changed meanwhile keeps the
   * password given with it. A pending password that is not this one (a rotation that came after) stays on record,
   * so that the next pool tries both. The pool is closed either way: the next use logs in with what is stored.
   */
  async finishRootRotation(name: string, username: string, password: string): Promise<void> {
    try {
      await changeJson<ConnectionConfig>(this.storage, CONFIG_PREFIX + name, (current) => {
        if (!current) {
          throw notFound(`database connection "${name}" was deleted while its root password was rotated`);
        }
        const { pending_password: pending, ...rest } = current;
        const next = current.username === username ? { ...rest, password } : rest;
        return pending === undefined || pending === password ? next : { ...next, pending_password: pending };
      });
    } finally {
      await this.reset(name);
    }
  }

  async delete(name: string): Promise<void> {
    await this.storage.delete(CONFIG_PREFIX + name);
    await this.reset(name);
  }

  /** Retires the pool; the next use opens a new one from the stored config. */
  async reset(name: string): Promise<void> {
    const pool = this.pools.get(name);
    if (!pool) return;
    this.pools.delete(name);
    pool.retired = true;
    if (pool.users === 0) await close(pool);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.pools.keys()].map((name) => this.reset(name)));
  }

  /** Runs `operation` with the connection's pooled driver, which stays open until it ends. */
  async use<T>(name: string, operation: (driver: DatabaseDriver) => Promise<T>): Promise<T> {
    let pool = this.pools.get(name);
    if (!pool) {
      const opened: Pool = { driver: this.open(name), users: 0, retired: false };
      opened.driver.catch(() => {
        if (this.pools.get(name) === opened) this.pools.delete(name);
      });
      this.pools.set(name, (pool = opened));
    }
    pool.users++;
    try {
      return await operation(await pool.driver);
    } finally {
      pool.users--;
      if (pool.retired && pool.users === 0) await close(pool);
    }
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
    if (config.pending_password) return this.settleRootRotation(config);
    return Connections.forConfig(config);
  }

  /**
   * A rotate-root was cut short between storing the new password and making it the current one (or is under way on
   * another node). Whichever of the two the database accepts is the root password now; it is stored only if the
   * config still holds that pending password when the write commits: the rotation under way may have finished
   * meanwhile, and a connection deleted meanwhile stays deleted.
   */
  private async settleRootRotation(config: ConnectionConfig): Promise<DatabaseDriver> {
    const pending = config.pending_password!;
    let failure: unknown;
    for (const password of [pending, config.password]) {
      const driver = Connections.forConfig(config, password);
      try {
        await driver.verify();
      } catch (err) {
        failure = err;
        await driver.close();
        continue;
      }
      await changeJson<ConnectionConfig>(this.storage, CONFIG_PREFIX + config.name, (current) => {
        if (current?.pending_password !== pending) return undefined;
        const { pending_password: _settled, ...rest } = current;
        return { ...rest, password };
      }).catch(async (err: unknown) => {
        await driver.close();
        throw err;
      });
      return driver;
    }
    // Neither works (the database is down, most likely): both stay on record for the next attempt.
    throw failure;
  }
}

async function close(pool: Pool): Promise<void> {
  await (await pool.driver.catch(() => undefined))?.close();
}

/** Turns a driver's failure into the client's error: its message is safe (it names the connection, no secrets). */
export function databaseFailure(err: unknown): never {
  if (err instanceof DatabaseError) throw new CofreError(err.unreachable ? 502 : 500, err.message);
  throw err;
}

import type { Storage } from '../core/storage.js';
import { openSqliteStorage } from './sqlite.js';

export type StorageConfig =
  | { type: 'sqlite'; path: string }
  | { type: 'postgresql'; connectionUrl: string; table?: string; maxConnections?: number };

/** A storage adapter with its counters, for diagnostics. */
export type StorageAdapter = Storage & { stats(): { reads: number; writes: number; commits: number } };

/** Opens the configured store: an SQLite file for one node, a PostgreSQL table for many. */
export async function openStorage(config: StorageConfig): Promise<StorageAdapter> {
  if (config.type === 'sqlite') return openSqliteStorage(config.path);
  const { openPostgresStorage } = await import('./postgres.js');
  return openPostgresStorage({
    connectionUrl: config.connectionUrl,
    ...(config.table ? { table: config.table } : {}),
    ...(config.maxConnections ? { maxConnections: config.maxConnections } : {}),
  });
}

import type { Storage } from '../core/storage.js';
import type { CommitListener } from './commit-times.js';
import { openSqliteStorage } from './sqlite.js';

export type StorageConfig =
  | { type: 'sqlite'; path: string }
  | { type: 'postgresql'; connectionUrl: string; table?: string; maxConnections?: number };

/** A storage adapter with its counters and the time of each commit, for diagnostics and metrics. */
export type StorageAdapter = Storage & {
  stats(): { reads: number; writes: number; commits: number };
  onCommit(listener: CommitListener): void;
};

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

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CopyProgress } from '../../core/store-copy.js';
import type { StorageConfig } from '../../storage/open.js';
import { CliError, usageError } from '../errors.js';
import { labelledBlock, parseDocument, parseStorage, type Block } from '../server-config.js';
import { stdio } from '../output.js';
import { formatBytes, Progress } from '../progress.js';

interface MigrateConfig {
  source: StorageConfig;
  destination: StorageConfig;
}

/** A storage_source or storage_destination block, read as the server reads its storage block. */
function storageOf(file: string, doc: Block, name: string): StorageConfig {
  const block = labelledBlock(doc, name);
  if (!block) throw usageError(`${file}: a ${name} block is required, e.g. ${name} "sqlite" { path = "…" }`);
  let config: StorageConfig;
  try {
    // The environment's URL is for servers; a migration names both stores in its file.
    config = parseStorage(file, block.label, block.body, {}, name);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  return config.type === 'sqlite' ? { ...config, path: resolve(config.path) } : config;
}

/** Vault's migration config: a storage_source and a storage_destination block, HCL or JSON. */
export function loadMigrateConfig(file: string): MigrateConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: Block;
  try {
    doc = parseDocument(file, text);
  } catch (err) {
    throw usageError((err as Error).message); // names the file, line and column
  }
  const config = {
    source: storageOf(file, doc, 'storage_source'),
    destination: storageOf(file, doc, 'storage_destination'),
  };
  if (describe(config.source) === describe(config.destination)) {
    throw usageError(`${file}: storage_source and storage_destination are the same store`);
  }
  return config;
}

/** Names a store without its connection URL, which may hold a password. */
function describe(config: StorageConfig): string {
  if (config.type === 'sqlite') return `sqlite (${config.path})`;
  const parts: string[] = [];
  try {
    const url = new URL(config.connectionUrl);
    parts.push(`${url.hostname}:${url.port || '5432'}${url.pathname}`);
  } catch {
    // Not shown at all: a malformed URL may still carry a password.
  }
  if (config.table) parts.push(`table ${config.table}`);
  return parts.length > 0 ? `postgresql (${parts.join(', ')})` : 'postgresql';
}

const PHASES: Partial<Record<CopyProgress['phase'], string>> = {
  clearing: 'Clearing the destination',
  checking: 'Checking the copy',
};

interface MigrateFlags {
  config: string;
  reset?: boolean;
}

/**
 * Offline, as `vault operator migrate`: no server may be running on either store (an SQLite file is locked by its
 * server; a PostgreSQL table is not, so stop its servers first). Copies the entries as they are, encrypted, so the
 * destination unseals with the source's keys.
 */
async function migrate(flags: MigrateFlags): Promise<void> {
  const config = loadMigrateConfig(flags.config);
  if (config.source.type === 'sqlite' && !existsSync(config.source.path)) {
    throw new CliError(`the source SQLite file ${config.source.path} does not exist`, 1);
  }
  // Loaded here, not at start-up: they bring the database drivers, which other commands do not need.
  const [{ openStorage }, { copyStore, digestStore, StoreNotEmptyError, SEAL_CONFIG_KEY }] = await Promise.all([
    import('../../storage/open.js'),
    import('../../core/store-copy.js'),
  ]);
  const state: { progress?: CopyProgress } = {};
  const progress = new Progress((s) => {
    const p = state.progress;
    if (!p) return `Opening the stores (${s}s)`;
    const verb = PHASES[p.phase] ?? 'Copying';
    return `${verb}: ${p.entries} entries (${formatBytes(p.bytes)}, ${s}s)`;
  });
  const opened: { close(): Promise<void> }[] = [];
  try {
    const source = await openStorage(config.source);
    opened.push(source);
    const destination = await openStorage(config.destination);
    opened.push(destination);
    if ((await source.get(SEAL_CONFIG_KEY)) === undefined) {
      throw new CliError(
        `the source store ${describe(config.source)} is not initialized: there is nothing to migrate`,
        1,
      );
    }
    const onProgress = (p: CopyProgress): void => void (state.progress = p);
    const copied = await copyStore(source, destination, { reset: flags.reset ?? false, onProgress }).catch((err) => {
      if (!(err instanceof StoreNotEmptyError)) throw err;
      throw new CliError(
        `the destination store ${describe(config.destination)} is not empty; use -reset to delete its entries first`,
        1,
      );
    });
    const check = await digestStore(destination, onProgress);
    if (check.entries !== copied.entries || check.digest !== copied.digest) {
      throw new CliError(
        `the copy does not match: ${copied.entries} entries were copied, the destination holds ${check.entries}`,
        1,
      );
    }
    progress.stop();
    stdio.stdout.write(
      `Success! Migrated ${copied.entries} entries (${formatBytes(copied.bytes)}) from ${describe(config.source)} ` +
        `to ${describe(config.destination)}, and checked the copy.\n`,
    );
  } catch (err) {
    if (/database is locked/.test((err as Error).message)) {
      throw new CliError('an SQLite file is in use (database is locked): stop its server, migrate runs offline', 1);
    }
    throw err;
  } finally {
    progress.stop();
    for (const store of opened.reverse()) await store.close();
  }
}

export function registerMigrateCommand(operator: Command): void {
  operator
    .command('migrate')
    .description('Copy the whole store from one storage engine to another, offline (stop the servers on both first)')
    .requiredOption('--config <file>', 'HCL or JSON file with a storage_source and a storage_destination block')
    .option('--reset', 'delete the entries of a destination that is not empty before copying')
    .action(migrate);
}

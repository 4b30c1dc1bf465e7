import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CopyProgress } from '../../core/store-copy.js';
import type { StorageConfig } from '../../storage/open.js';
import { CliError, usageError } from '../errors.js';
import { stdio } from '../output.js';
import { formatBytes, Progress } from '../progress.js';

type Block = Record<string, unknown>;

interface MigrateConfig {
  source: StorageConfig;
  destination: StorageConfig;
}

/** HCL blocks come back from hcl2-parser as `{ storage_source: [ { sqlite: [ {...} ] } ] }`; JSON may omit arrays. */
function labelledBlock(doc: Block, name: string): { label: string; body: Block } | undefined {
  const raw = doc[name];
  const block = Array.isArray(raw) ? raw[0] : raw;
  if (!block || typeof block !== 'object') return undefined;
  const [label, inner] = Object.entries(block as Block)[0] ?? [];
  if (label === undefined) return undefined;
  const body = Array.isArray(inner) ? inner[0] : inner;
  return { label, body: (body ?? {}) as Block };
}

function storageOf(file: string, doc: Block, name: string): StorageConfig {
  const block = labelledBlock(doc, name);
  if (!block) throw usageError(`${file}: a ${name} block is required, e.g. ${name} "sqlite" { path = "…" }`);
  const str = (key: string): string | undefined => {
    const v = block.body[key];
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  if (block.label === 'sqlite') {
    const path = str('path');
    if (!path) throw usageError(`${file}: ${name} "sqlite" needs a path`);
    return { type: 'sqlite', path: resolve(path) };
  }
  if (block.label === 'postgresql') {
    const connectionUrl = str('connection_url');
    if (!connectionUrl) throw usageError(`${file}: ${name} "postgresql" needs a connection_url`);
    const maxParallel = Number(str('max_parallel'));
    return {
      type: 'postgresql',
      connectionUrl,
      ...(str('table') ? { table: str('table') } : {}),
      ...(Number.isInteger(maxParallel) && maxParallel > 0 ? { maxConnections: maxParallel } : {}),
    };
  }
  throw usageError(`${file}: unsupported ${name} "${block.label}" (supported: sqlite, postgresql)`);
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
  if (file.endsWith('.json') || text.trimStart().startsWith('{')) {
    try {
      doc = JSON.parse(text) as Block;
    } catch {
      throw usageError(`${file}: invalid JSON`);
    }
  } else {
    const hcl = createRequire(import.meta.url)('hcl2-parser') as { parseToObject(t: string): [Block, unknown] };
    const [parsed, err] = hcl.parseToObject(text);
    if (err || !parsed) throw usageError(`${file}: invalid HCL (check quotes and braces)`);
    doc = parsed;
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

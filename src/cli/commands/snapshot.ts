import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { SnapshotError, verifySnapshot, type SnapshotInfo } from '../../core/snapshot.js';
import type { CopyProgress } from '../../core/store-copy.js';
import { apiCommand, clientFrom, type CommonFlags } from '../common.js';
import { CliError } from '../errors.js';
import { stdio } from '../output.js';
import { formatBytes, Progress } from '../progress.js';
import { streamRequest } from '../../client/stream.js';
import { registerMigrateCommand } from './migrate.js';
import { loadServerConfig } from '../server-config.js';

function describeSnapshot(info: SnapshotInfo, size: number): string {
  return `${info.entries} entries, ${formatBytes(size)}, taken ${info.createdAt.toISOString()}`;
}

/** Verifies a snapshot file; a damaged one is an error saying what is wrong, in the caller's words. */
async function verifyFile(
  file: string,
  state: { progress?: CopyProgress },
  damaged: (reason: string) => string,
): Promise<SnapshotInfo> {
  try {
    return await verifySnapshot(createReadStream(file), (p) => (state.progress = p));
  } catch (err) {
    if (err instanceof SnapshotError) throw new CliError(damaged(err.message), 1);
    throw err;
  }
}

async function save(file: string, flags: CommonFlags): Promise<void> {
  const client = clientFrom(flags);
  // Written beside the target and renamed once verified: FILE is either a whole snapshot or left as it was.
  const partial = `${file}.partial`;
  const state: { received: number; progress?: CopyProgress } = { received: 0 };
  const progress = new Progress((s) =>
    state.progress
      ? `Verifying the snapshot: ${state.progress.entries} entries checked (${s}s)`
      : `Saving a snapshot: ${formatBytes(state.received)} received (${s}s)`,
  );
  try {
    const res = await streamRequest(client.config, {
      method: 'GET',
      path: 'sys/storage/snapshot',
      what: 'saving a snapshot',
    });
    await pipeline(
      res,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          state.received += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(partial, { mode: 0o600 }),
    ).catch((err: Error) => {
      throw new CliError(
        `saving a snapshot: the download stopped after ${formatBytes(state.received)}: ${err.message}`,
        1,
      );
    });
    // The server streams as it reads: a failure on its side shows only as a snapshot cut short, caught here.
    const info = await verifyFile(
      partial,
      state,
      (reason) => `the snapshot received is unusable, nothing was saved to ${file}: ${reason}`,
    );
    await rename(partial, file);
    progress.stop();
    stdio.stdout.write(`Success! Saved a snapshot to ${file} (${describeSnapshot(info, state.received)}).\n`);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  } finally {
    progress.stop();
  }
}

/**
 * Restores FILE straight into the store a server configuration names, with that server stopped: the way back for a
 * store an online restore left unfinished (it reads as not initialized, and refuses sys/init), or for a server that
 * cannot be unsealed. The snapshot's unseal keys replace the store's, as with --force.
 */
async function restoreOffline(file: string, configFile: string): Promise<void> {
  const config = loadServerConfig(configFile);
  const [{ openStorage }, { restoreSnapshot }] = await Promise.all([
    import('../../storage/open.js'),
    import('../../core/snapshot.js'),
  ]);
  const state: { progress?: CopyProgress } = {};
  const progress = new Progress((s) => {
    const p = state.progress;
    if (!p) return `Opening the store (${s}s)`;
    return `${OFFLINE_PHASES[p.phase] ?? 'Restoring'}: ${p.entries} entries (${formatBytes(p.bytes)}, ${s}s)`;
  });
  let store: { close(): Promise<void> } | undefined;
  try {
    const target = await openStorage(config.storage);
    store = target;
    const info = await restoreSnapshot(createReadStream(file), target, {
      force: true,
      overUnfinished: true,
      onProgress: (p) => void (state.progress = p),
    });
    progress.stop();
    stdio.stdout.write(
      `Success! Restored the snapshot ${file} (${describeSnapshot(info, (await stat(file)).size)}) into the store ` +
        `of ${configFile}.\nStart the server and unseal it with the unseal keys of the store the snapshot was taken ` +
        'from.\n',
    );
  } catch (err) {
    if (err instanceof SnapshotError) throw new CliError(`${file}: ${err.message}`, 1);
    if (/database is locked|is in use by another Cofre server/.test((err as Error).message)) {
      throw new CliError('the store is in use: stop its server first, an offline restore writes it directly', 1);
    }
    throw err;
  } finally {
    progress.stop();
    await store?.close();
  }
}

const OFFLINE_PHASES: Partial<Record<CopyProgress['phase'], string>> = {
  receiving: 'Reading the snapshot',
  verifying: 'Verifying the snapshot',
  clearing: 'Clearing the store',
  writing: 'Writing',
};

async function restore(file: string, flags: CommonFlags & { force?: boolean; offlineConfig?: string }): Promise<void> {
  if (flags.offlineConfig) return restoreOffline(file, flags.offlineConfig);
  const client = clientFrom(flags);
  const size = (await stat(file)).size;
  const state: { sent: number; progress?: CopyProgress; uploaded: boolean } = { sent: 0, uploaded: false };
  const progress = new Progress((s) => {
    if (state.uploaded) return `Waiting for the server to verify and write the snapshot (${s}s)`;
    if (state.sent > 0) return `Uploading the snapshot: ${formatBytes(state.sent)} of ${formatBytes(size)} (${s}s)`;
    return `Verifying ${file}: ${state.progress?.entries ?? 0} entries checked (${s}s)`;
  });
  try {
    // Checked here first: a damaged file fails with the exact reason, before anything is sent.
    const info = await verifyFile(file, state, (reason) => `${file}: ${reason}`);
    const upload = Readable.from(
      (async function* () {
        for await (const chunk of createReadStream(file)) {
          state.sent += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        state.uploaded = true;
      })(),
    );
    const res = await streamRequest(client.config, {
      method: 'POST',
      path: flags.force ? 'sys/storage/snapshot-force' : 'sys/storage/snapshot',
      what: 'restoring a snapshot',
      body: { stream: upload, contentType: 'application/octet-stream', length: size },
    });
    res.resume();
    progress.stop();
    stdio.stdout.write(
      `Success! Restored the snapshot ${file} (${describeSnapshot(info, size)}).\n` +
        'The server is sealed: unseal it with the unseal keys of the store the snapshot was taken from.\n',
    );
  } finally {
    progress.stop();
  }
}

/** `operator snapshot save|restore` (through the API) and `operator migrate` (offline), under `operator`. */
export function registerSnapshotCommands(operator: Command): void {
  const snapshot = operator
    .command('snapshot')
    .description('Save the whole store to a file, or restore it from one (entries stay encrypted)');

  apiCommand(
    snapshot,
    'save <file>',
    "Save a snapshot of the server's store to FILE: encrypted entries only, usable only with the unseal keys",
    false,
  ).action(save);

  apiCommand(
    snapshot,
    'restore <file>',
    'Restore the store from a snapshot FILE, then seal the server; it unseals with the keys of the snapshot',
    false,
  )
    .option('--force', "restore a snapshot taken with other unseal keys than the server's (they replace them)")
    .option(
      '--offline-config <file>',
      "with the server stopped, restore straight into the store its configuration file names (the snapshot's keys " +
        "replace the store's): for a store an online restore left unfinished",
    )
    .action(restore);

  registerMigrateCommand(operator);
}

/**
 * `cofre server --workers N`: N server threads on one SQLite store and one port, so a server uses more than one
 * core. The primary (main) thread serves no request; it holds the store's lock, starts the commit thread (the one
 * writer of the file) and the server threads, hands the operators' seal and unseal actions from the thread that
 * took them to the others, and holds the audit devices (src/workers/audit-relay.ts).
 *
 * Every thread is a full server (its own core, caches and HTTP listener; the kernel spreads connections over their
 * sockets, SO_REUSEPORT). They stay one server to clients:
 * - a write is acknowledged only after every other thread was told of its keys, and each request first applies
 *   what it was told (SqliteThreadStorage.catchUp), so a token revoked or a policy changed through one thread is
 *   refused or applied by every other from the moment the change is acknowledged;
 * - read-modify-writes under a key lock also exclude the other threads (shareKeyLocksAcrossThreads);
 * - sys/seal and unseal key shares reach every thread before the answer (ServerPeers);
 * - the first thread holds the sys/generate-root and sys/rekey attempts, and the others forward those calls to it
 *   (src/core/key-ceremonies.ts);
 * - the first thread runs the background jobs (lease expiry, rotations);
 * - the first thread serves every write, which the others hand to it (write-forwarding.ts).
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { auditDeviceFactories } from '../audit/index.js';
import { envSwitch } from '../cli/env-switch.js';
import { loadServerConfig, splitAddress, type ServerConfig } from '../cli/server-config.js';
import type { ServerFlags } from '../cli/server.js';
import { SHARED_LOCK_SLOTS } from '../core/key-locks.js';
import type { CommitThreadData } from '../storage/sqlite-commit-thread.js';
import { holdFile } from '../storage/sqlite.js';
import { openStoreFile } from '../storage/sqlite-writer.js';
import { startThread, threadScript } from '../storage/thread-script.js';
import { AuditHost } from './audit-relay.js';
import { rpc, type Rpc } from './rpc.js';
import type { ServerThreadData } from './server-thread.js';

interface ServerThread {
  index: number;
  worker: Worker;
  calls: Rpc;
}

/** Where the store is, and the audit devices' confinement, from the flags or the configuration file. */
function storeOf(
  flags: ServerFlags,
  config: ServerConfig | undefined,
): { file: string; auditFilePathPrefix: string | undefined } {
  if (flags.dev) {
    if (!flags.dataDir) {
      throw new Error('--workers needs --data-dir in dev mode: the threads share a store file (in memory, one would)');
    }
    return { file: join(flags.dataDir, 'cofre.db'), auditFilePathPrefix: undefined };
  }
  if (!config) throw new Error('either --dev or --config FILE is required');
  if (config.storage.type !== 'sqlite') {
    throw new Error(
      '--workers needs SQLite storage; with PostgreSQL, run several server processes on the table instead',
    );
  }
  if (config.seal) throw new Error('--workers does not support a PKCS#11 seal yet: run one thread (no --workers)');
  return { file: config.storage.path, auditFilePathPrefix: config.auditFilePathPrefix };
}

/**
 * SO_REUSEPORT would let the threads share a port with another server of the same user already on it (another
 * `--workers` server), each taking some of the connections: the port must be free before the threads take it.
 */
async function refuseTakenPort(flags: ServerFlags, config: ServerConfig | undefined): Promise<void> {
  const address = config ? config.listener.address : flags.devListenAddress;
  const { host, port } = splitAddress(address);
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`${address} is already in use`) : err),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** `config`: the configuration file, when the caller has read it already (the threads read it again each). */
export async function runServerThreads(flags: ServerFlags, count: number, config?: ServerConfig): Promise<void> {
  // COFRE_FORWARD_WRITES=off has every thread serve its own writes, as before: the tests check both ways.
  const forwardWrites = envSwitch('COFRE_FORWARD_WRITES') !== 'off';
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    throw new Error(`--workers needs Node.js 22.12 or newer (SO_REUSEPORT); this is ${process.version}`);
  }
  const serverConfig = flags.dev || !flags.config ? undefined : (config ?? loadServerConfig(flags.config));
  const { file, auditFilePathPrefix } = storeOf(flags, serverConfig);
  if (flags.dev && flags.dataDir) mkdirSync(flags.dataDir, { recursive: true, mode: 0o700 });
  const lock = holdFile(file);
  openStoreFile(file).close(); // the schema exists before any thread reads

  const changeCounter = new SharedArrayBuffer(4);
  const lockSlots = new SharedArrayBuffer(4 * SHARED_LOCK_SLOTS);
  const channels = Array.from({ length: count }, () => new MessageChannel());
  const clients = channels.map((c) => c.port1);
  // The first thread serves the others' writes (write-forwarding.ts), each over a port of its own.
  const writeChannels = Array.from({ length: count - 1 }, () => new MessageChannel());
  const committer = startThread(import.meta.url, '../storage/sqlite-commit-thread', {
    workerData: { file, clients, changeCounter } satisfies CommitThreadData,
    transferList: clients,
  });
  const committerExit = new Promise<void>((resolve) => committer.once('exit', () => resolve()));
  const fileConfig = { pathPrefix: auditFilePathPrefix };
  const audit = new AuditHost(auditDeviceFactories({ file: fileConfig }), fileConfig);
  const threads: ServerThread[] = [];
  let stopping = false;

  const others = (from: number) => threads.filter((t) => t.index !== from);
  const start = (index: number, port: number | undefined): Promise<{ announce: string; port: number }> =>
    new Promise((resolve, reject) => {
      const commitPort: MessagePort = channels[index]!.port2;
      const writePorts: MessagePort[] =
        index === 0 ? writeChannels.map((c) => c.port1) : [writeChannels[index - 1]!.port2];
      const worker = new Worker(threadScript(import.meta.url, 'server-thread'), {
        workerData: {
          flags,
          index,
          threads: count,
          file,
          commitPort,
          writePorts,
          forwardWrites,
          changeCounter,
          lockSlots,
          ...(port === undefined ? {} : { port }),
        } satisfies ServerThreadData,
        transferList: [commitPort, ...writePorts],
      });
      const calls = rpc(worker, {
        started: (started: { announce: string; port: number }) => resolve(started),
        'audit.open': (args: Parameters<AuditHost['open']>[0]) => audit.open(args),
        'audit.writeMany': (args: Parameters<AuditHost['writeMany']>[0]) => audit.writeMany(args),
        'audit.close': (id: number) => audit.close(id),
        'audit.recent': (args: Parameters<AuditHost['recent']>[0]) => audit.recent(args),
        'audit.takeChain': (options: Record<string, string>) => audit.takeChain(options),
        'audit.giveChain': (real: string) => audit.giveChain(real),
        'peers.sealed': () => Promise.all(others(index).map((t) => t.calls.call('seal'))).then(() => undefined),
        'peers.unsealKey': (args: unknown) =>
          Promise.all(others(index).map((t) => t.calls.call('unsealKey', args))).then(() => undefined),
        'peers.ceremony': (call: unknown) => threads.find((t) => t.index === 0)!.calls.call('ceremony', call),
      });
      worker.once('error', (err) => {
        reject(err);
        if (!stopping) fail(`server thread ${index} failed: ${err.message}`);
      });
      worker.once('exit', (code) => {
        calls.fail(new Error(`server thread ${index} exited`));
        if (!stopping) fail(`server thread ${index} exited (code ${code})`);
      });
      threads.push({ index, worker, calls });
    });

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(threads.map((t) => t.calls.call('close')));
    await Promise.allSettled(threads.map((t) => t.worker.terminate()));
    committer.postMessage('close');
    await committerExit;
    await audit.closeAll();
    lock.close();
  };
  // One thread gone leaves a server that no longer seals, unseals or leads as a whole: stop, and let the
  // supervisor start it again.
  const fail = (reason: string): void => {
    process.stderr.write(`cofre: ${reason}; stopping\n`);
    void stop().finally(() => process.exit(1));
  };
  // Without its commit thread no write can be acknowledged again.
  committer.once('exit', (code) => {
    if (!stopping) fail(`the SQLite commit thread exited (code ${code})`);
  });

  await refuseTakenPort(flags, serverConfig);
  // The first thread initialises a new dev store and takes a port; the others start on it once it is up.
  const first = await start(0, undefined);
  await Promise.all(Array.from({ length: count - 1 }, (_, i) => start(i + 1, first.port)));
  process.stdout.write(first.announce.replace(/\n$/, '') + `\nServer threads: ${count}\n`);

  const shutdown = (): void => {
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  process.on('SIGHUP', () => void audit.reopen());
}

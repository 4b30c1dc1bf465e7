import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Cofre, StorageAdapter } from '../app.js';
import type { AuditSinkFactory } from '../core/audit-broker.js';
import type { Core, ServerPeers } from '../core/core.js';
import type { Seal } from '../core/seal.js';
import type { Pkcs11SealConfig } from '../seal/pkcs11-config.js';
import type { ServeRequest } from '../workers/write-forwarding.js';
import { invalidBrowserHost } from '../http/browser-hosts.js';
import { devLogStream } from './dev-log.js';
import { applyServerGcFlags } from './gc-settings.js';
import { loadServerConfig, splitAddress } from './server-config.js';

export interface ServerFlags {
  dev?: boolean;
  config?: string;
  /** Dev mode keeps its store here across restarts; without it, the store lives in memory. */
  dataDir?: string;
  devRootTokenId?: string;
  devListenAddress: string;
  /** Dev mode: more names the server answers to, besides addresses, localhost and the listen address's host. */
  devAllowedHost?: string[];
  logLevel?: string;
  /** Server threads sharing the store (src/workers/); 1 serves everything on the main thread. */
  workers?: string;
}

/** What a server thread brings to the server it runs (src/workers/server-thread.ts). */
export interface Threading {
  physical: StorageAdapter;
  peers: ServerPeers;
  auditDevices: Record<string, AuditSinkFactory>;
  /** Where to listen instead of the configured port (the port the first thread was given when it asked for 0). */
  port?: number;
  /** Where requests are served (src/workers/write-forwarding.ts). */
  routeRequests?: (core: Core, local: ServeRequest, forwarded: () => void) => ServeRequest;
}

/** A started server, and what to print about it. */
export interface StartedServer {
  cofre: Cofre;
  announce: string;
  /** The port it listens on. */
  port: number;
}

const DEV_WARNING = `WARNING! dev mode is enabled! In this mode, Cofre runs unsealed, with one unseal key, and shows
the root token. Never use dev mode for real secrets.`;

interface DevServer {
  cofre: Cofre;
  rootToken: string;
  unsealKey: string;
  /** What the banner says of the store. */
  storage: string;
}

/**
 * The names a dev server answers to besides IP addresses and localhost. It checks every request's name (not only
 * browsers'): its root token may be well known, and a browser marks a plain-HTTP same-origin read with nothing.
 * Not the machine's own name: one taken from DHCP, or a short one resolved through the network's search domains, is
 * the network's to point anywhere.
 */
function devHostNames(flags: ServerFlags): string[] {
  return [flags.devListenAddress, ...(flags.devAllowedHost ?? [])];
}

/** Refuses what the server's flags cannot mean, before anything is opened or any thread started. */
function checkFlags(flags: ServerFlags): void {
  if (flags.devAllowedHost?.length && !flags.dev) {
    throw new Error('--dev-allowed-host is for dev mode; with --config, name the hosts in browser_hosts');
  }
  for (const name of flags.devAllowedHost ?? []) {
    const problem = invalidBrowserHost(name);
    if (problem) throw new Error(`--dev-allowed-host: ${problem}`);
  }
}

/**
 * Dev mode, as Vault's: a store initialised with one key share, unsealed, with KV v2 at secret/. By default the
 * store is in memory and gone when the server stops. With --data-dir it is a SQLite file in that directory, and the
 * key share and root token are kept beside it (in clear) so that a restart unseals itself and keeps the data.
 */
async function startDev(flags: ServerFlags, threading?: Threading): Promise<DevServer> {
  const { createCofre, devDefaultMounts } = await import('../app.js');
  const dir = flags.dataDir;
  if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = dir ? join(dir, 'dev-unseal-key') : undefined;
  const tokenFile = dir ? join(dir, 'dev-root-token') : undefined;
  const cofre = await createCofre({
    storage: { type: 'sqlite', path: dir ? join(dir, 'cofre.db') : ':memory:' },
    logLevel: flags.logLevel ?? 'info',
    logStream: devLogStream(),
    requestLog: true,
    defaultMounts: devDefaultMounts(),
    ui: { redirectRoot: true },
    browserHosts: devHostNames(flags),
    checkEveryHost: true,
    ...threadingOptions(threading),
  });
  const { core } = cofre;
  let unsealKey: string;
  let rootToken: string;
  if (!(await core.initialized())) {
    const init = await core.initialize(1, 1);
    unsealKey = init.keys[0]!.toString('base64');
    rootToken = init.rootToken;
    if (keyFile && tokenFile) {
      writeFileSync(keyFile, unsealKey, { mode: 0o600 });
      writeFileSync(tokenFile, rootToken, { mode: 0o600 });
    }
  } else if (!keyFile || !tokenFile || !existsSync(keyFile)) {
    throw new Error(`${dir} holds an initialized store but no dev unseal key: it was not made by dev mode`);
  } else {
    unsealKey = readFileSync(keyFile, 'utf8').trim();
    rootToken = readFileSync(tokenFile, 'utf8').trim();
  }
  await core.unsealWith([Buffer.from(unsealKey, 'base64')]);
  if (flags.devRootTokenId && flags.devRootTokenId !== rootToken) {
    if (!(await core.tokens.lookup(flags.devRootTokenId))) {
      await core.tokens.create({
        policies: ['root'],
        displayName: 'root',
        ttl: 0,
        parentHash: '',
        path: 'auth/token/root',
        id: flags.devRootTokenId,
      });
    }
    rootToken = flags.devRootTokenId;
    if (tokenFile) writeFileSync(tokenFile, rootToken, { mode: 0o600 });
  }
  const storage = dir
    ? `SQLite in ${dir} (kept across restarts; the unseal key and root token are stored there in clear)`
    : 'in memory (everything is lost when the server stops; --data-dir DIR keeps it)';
  return { cofre, rootToken, unsealKey, storage };
}

/** Builds, listens and (dev mode, or a seal that unseals by itself) unseals a server; says what to print. */
export async function startServer(flags: ServerFlags, threading?: Threading): Promise<StartedServer> {
  // Threads share one port: the kernel spreads the connections over their sockets.
  const listen = async (cofre: Cofre, address: string): Promise<number> => {
    const { host, port } = splitAddress(address);
    await cofre.http.listen({ host, port: threading?.port ?? port, ...(threading ? { reusePort: true } : {}) });
    const bound = cofre.http.server.address();
    return typeof bound === 'object' && bound ? bound.port : port;
  };
  if (flags.dev) {
    const dev = await startDev(flags, threading);
    const { host } = splitAddress(flags.devListenAddress);
    const port = await listen(dev.cofre, flags.devListenAddress);
    const url = `http://${host}:${port}`;
    const announce =
      `${DEV_WARNING}\n\nStorage:     ${dev.storage}\nAPI address: ${url}\nWeb UI:      ${url}/ui/\n\n` +
      `    export VAULT_ADDR='${url}'   # or COFRE_ADDR\n\n` +
      `Unseal Key: ${dev.unsealKey}\nRoot Token: ${dev.rootToken}\n\nCofre server started (dev mode)! Log data will stream in below:\n`;
    return { cofre: dev.cofre, announce, port };
  }
  if (!flags.config) throw new Error('either --dev or --config FILE is required');
  const config = loadServerConfig(flags.config);
  const tls =
    config.listener.tlsDisable || !config.listener.tlsCertFile || !config.listener.tlsKeyFile
      ? undefined
      : { cert: readFileSync(config.listener.tlsCertFile), key: readFileSync(config.listener.tlsKeyFile) };
  const { createCofre } = await import('../app.js');
  const seals = config.seal ? await openSeal(config.seal) : {};
  const cofre = await createCofre({
    ...seals,
    storage: config.storage,
    ...(config.apiAddr ? { apiAddr: config.apiAddr } : {}),
    logLevel: flags.logLevel ?? config.logLevel,
    ...(tls ? { tls } : {}),
    ...(config.auditFilePathPrefix ? { auditFilePathPrefix: config.auditFilePathPrefix } : {}),
    ...(config.ui ? { ui: { redirectRoot: false } } : {}),
    browserHosts: [config.listener.address, ...(config.apiAddr ? [config.apiAddr] : []), ...config.browserHosts],
    ...threadingOptions(threading),
  });
  const port = await listen(cofre, config.listener.address);
  const started = await cofre.core.unsealOnStart().catch(async (err: unknown) => {
    await cofre.close().catch(() => undefined);
    throw err;
  });
  const address = config.listener.address;
  return {
    cofre,
    port,
    announce: `Cofre server started on ${tls ? 'https' : 'http'}://${address} (${startState[started]})\n`,
  };
}

function threadingOptions(threading: Threading | undefined) {
  if (!threading) return {};
  const { physical, peers, auditDevices, routeRequests } = threading;
  return { physical, peers, auditDevices, ...(routeRequests ? { routeRequests } : {}) };
}

async function run(flags: ServerFlags): Promise<void> {
  checkFlags(flags);
  applyServerGcFlags();
  const config = flags.workers === undefined && flags.config && !flags.dev ? loadServerConfig(flags.config) : undefined;
  const workers = config ? (config.workers ?? 1) : parseWorkers(flags.workers);
  if (workers > 1) {
    const { runServerThreads } = await import('../workers/primary.js');
    return runServerThreads(flags, workers, config);
  }
  const { cofre, announce } = await startServer(flags);
  process.stdout.write(announce);
  const stop = (): void => {
    cofre.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // As Vault: SIGHUP reopens the audit files, for log rotation tools that rename them away.
  process.on('SIGHUP', () => void cofre.core.audit.reopen());
}

function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new Error(`--workers must be a whole number from 1 to 64, not "${value}"`);
  return n;
}

const startState = {
  unsealed: 'unsealed by its seal',
  'not initialized': 'not initialized: run cofre operator init',
  'migration pending': 'sealed: seal migration pending, unseal with cofre operator unseal -migrate',
  'needs keys': 'sealed until unsealed',
};

/** A PKCS#11 seal block: the server's seal, or (disabled = true) the seal a migration back to Shamir leaves. */
async function openSeal(config: Pkcs11SealConfig): Promise<{ seal?: Seal; migrateFrom?: Seal }> {
  const { Pkcs11Seal } = await import('../seal/pkcs11.js');
  const seal = Pkcs11Seal.open(config);
  return config.disabled ? { migrateFrom: seal } : { seal };
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('Start a Cofre server (--dev for a self-unsealing development server)')
    .option(
      '--dev',
      'development mode: a store in memory (or in --data-dir), initialised, unsealed, root token printed',
    )
    .option('--config <file>', 'server configuration file (HCL or JSON)')
    .option('--data-dir <dir>', 'dev mode: keep the store in this directory across restarts (default: in memory)')
    .option('--dev-root-token-id <id>', 'dev mode: use this root token')
    .option('--dev-listen-address <addr>', 'dev mode: address to listen on', '127.0.0.1:8200')
    .option(
      '--dev-allowed-host <name>',
      "dev mode: a name the server answers to besides IP addresses, localhost and the listen address's host (repeatable; '*': any)",
      (name: string, names: string[]) => [...names, name],
      [] as string[],
    )
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option(
      '--workers <n>',
      "server threads sharing the store and the port (SQLite file storage; default 1, or the configuration file's workers; see docs/operations.md)",
    )
    .action(async (flags: ServerFlags) => {
      try {
        await run(flags);
      } catch (err) {
        process.stderr.write(`Error starting server: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

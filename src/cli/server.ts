import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Cofre } from '../app.js';
import { loadServerConfig, splitAddress } from './server-config.js';

interface ServerFlags {
  dev?: boolean;
  config?: string;
  dataDir: string;
  devRootTokenId?: string;
  devListenAddress: string;
  logLevel?: string;
}

const DEV_WARNING = `WARNING! dev mode is enabled! In this mode, Cofre runs unsealed with its unseal key and root token
stored IN CLEAR on disk in the data directory. Never use dev mode for real secrets.`;

/**
 * Dev mode: a SQLite store in a data directory, initialised on first start with one key share that is kept on
 * disk (beside the root token) so a restart unseals itself and keeps the data.
 */
async function startDev(flags: ServerFlags): Promise<{ cofre: Cofre; rootToken: string; unsealKey: string }> {
  const { createCofre, devDefaultMounts } = await import('../app.js');
  mkdirSync(flags.dataDir, { recursive: true, mode: 0o700 });
  const keyFile = join(flags.dataDir, 'dev-unseal-key');
  const tokenFile = join(flags.dataDir, 'dev-root-token');
  const cofre = await createCofre({
    storage: { type: 'sqlite', path: join(flags.dataDir, 'cofre.db') },
    logLevel: flags.logLevel ?? 'warn',
    defaultMounts: devDefaultMounts(),
  });
  const { core } = cofre;
  if (!(await core.initialized())) {
    const { keys, rootToken } = await core.initialize(1, 1);
    writeFileSync(keyFile, keys[0]!.toString('base64'), { mode: 0o600 });
    writeFileSync(tokenFile, rootToken, { mode: 0o600 });
  } else if (!existsSync(keyFile)) {
    throw new Error(`${flags.dataDir} holds an initialized store but no dev unseal key: it was not made by dev mode`);
  }
  const unsealKey = readFileSync(keyFile, 'utf8').trim();
  await core.unsealWith([Buffer.from(unsealKey, 'base64')]);
  let rootToken = readFileSync(tokenFile, 'utf8').trim();
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
    writeFileSync(tokenFile, rootToken, { mode: 0o600 });
  }
  return { cofre, rootToken, unsealKey };
}

async function run(flags: ServerFlags): Promise<void> {
  let cofre: Cofre;
  let address: string;
  if (flags.dev) {
    const dev = await startDev(flags);
    cofre = dev.cofre;
    address = flags.devListenAddress;
    const { host, port } = splitAddress(address);
    await cofre.http.listen({ host, port });
    const bound = cofre.http.server.address();
    const url = `http://${host}:${typeof bound === 'object' && bound ? bound.port : port}`;
    process.stdout.write(
      `${DEV_WARNING}\n\nData directory: ${flags.dataDir}\nAPI address:    ${url}\n\n` +
        `    export VAULT_ADDR='${url}'   # or COFRE_ADDR\n\n` +
        `Unseal Key: ${dev.unsealKey}\nRoot Token: ${dev.rootToken}\n\nCofre server started (dev mode)! Log data will stream in below:\n`,
    );
  } else {
    if (!flags.config) throw new Error('either --dev or --config FILE is required');
    const config = loadServerConfig(flags.config);
    const tls =
      config.listener.tlsDisable || !config.listener.tlsCertFile || !config.listener.tlsKeyFile
        ? undefined
        : { cert: readFileSync(config.listener.tlsCertFile), key: readFileSync(config.listener.tlsKeyFile) };
    const { createCofre } = await import('../app.js');
    cofre = await createCofre({
      storage: config.storage,
      ...(config.apiAddr ? { apiAddr: config.apiAddr } : {}),
      logLevel: flags.logLevel ?? config.logLevel,
      ...(tls ? { tls } : {}),
      ...(config.auditFilePathPrefix ? { auditFilePathPrefix: config.auditFilePathPrefix } : {}),
    });
    address = config.listener.address;
    const { host, port } = splitAddress(address);
    await cofre.http.listen({ host, port });
    process.stdout.write(`Cofre server started on ${tls ? 'https' : 'http'}://${address} (sealed until unsealed)\n`);
  }
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

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('Start a Cofre server (--dev for a self-unsealing development server)')
    .option('--dev', 'development mode: SQLite store in --data-dir, initialised, unsealed, root token printed')
    .option('--config <file>', 'server configuration file (HCL or JSON)')
    .option('--data-dir <dir>', 'dev mode data directory', join(homedir(), '.cofre', 'dev'))
    .option('--dev-root-token-id <id>', 'dev mode: use this root token')
    .option('--dev-listen-address <addr>', 'dev mode: address to listen on', '127.0.0.1:8200')
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .action(async (flags: ServerFlags) => {
      try {
        await run(flags);
      } catch (err) {
        process.stderr.write(`Error starting server: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';

interface KmsFlags {
  socket: string;
  cofreAddress?: string;
  cofreCaCert?: string;
  transitMount: string;
  key: string;
  approleMount: string;
  approleRoleIdFile?: string;
  approleSecretIdFile?: string;
  tokenFile?: string;
  logLevel: string;
}

/**
 * `cofre kms-plugin`: a Kubernetes KMS v2 plugin whose key-encryption key is a transit key in Cofre
 * (docs/kms-plugin.md). It runs beside kube-apiserver (a static pod or a systemd unit on the control-plane host).
 */
async function run(flags: KmsFlags): Promise<void> {
  const [{ default: pino }, { VaultClient }, { PluginSession }, { TransitKek }, { startKmsServer }] = await Promise.all(
    [
      import('pino'),
      import('../client/client.js'),
      import('../kube/kms-plugin/auth.js'),
      import('../kube/kms-plugin/transit.js'),
      import('../kube/kms-plugin/server.js'),
    ],
  );
  const env = process.env;
  const logger = pino({ level: flags.logLevel, base: { component: 'kms-plugin' } });
  const log = (level: 'info' | 'warn', msg: string, fields?: object): void => logger[level](fields ?? {}, msg);
  const address = flags.cofreAddress ?? env.COFRE_ADDR ?? env.VAULT_ADDR;
  if (!address) throw new Error('--cofre-address (or COFRE_ADDR) is required');
  const ca = flags.cofreCaCert ?? env.COFRE_CACERT;
  const client = new VaultClient({
    address: address.replace(/\/+$/, ''),
    ...(ca ? (ca.includes('-----BEGIN') ? { caCertBytes: ca } : { caCertBytes: readFileSync(ca, 'utf8') }) : {}),
  });
  const approle = flags.approleRoleIdFile || flags.approleSecretIdFile;
  if (approle && flags.tokenFile) throw new Error('give AppRole files or --token-file, not both');
  if (!approle && !flags.tokenFile)
    throw new Error('say how to log in: --approle-role-id-file and --approle-secret-id-file, or --token-file');
  if (approle && !(flags.approleRoleIdFile && flags.approleSecretIdFile))
    throw new Error('AppRole needs both --approle-role-id-file and --approle-secret-id-file');
  const session = new PluginSession(
    client,
    approle
      ? {
          method: 'approle',
          mount: flags.approleMount.replace(/^\/+|\/+$/g, '').replace(/^auth\//, ''),
          roleIdFile: flags.approleRoleIdFile!,
          secretIdFile: flags.approleSecretIdFile!,
        }
      : { method: 'token-file', tokenFile: flags.tokenFile! },
    log,
  );
  const kek = new TransitKek(client, session, flags.transitMount.replace(/^\/+|\/+$/g, ''), flags.key);
  // A first login now, so a mistake shows at start; the plugin keeps running either way and says so in Status.
  await session.token().catch(() => undefined);
  const server = await startKmsServer({ socket: flags.socket, kek, session, log });
  log('info', 'kms plugin started', { socket: flags.socket, key: `${flags.transitMount}/${flags.key}` });
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

export function registerKmsPluginCommand(program: Command): void {
  program
    .command('kms-plugin')
    .description('Run a Kubernetes KMS v2 plugin whose key-encryption key is a transit key in Cofre')
    .option('--socket <path>', 'the unix socket kube-apiserver dials', '/var/run/cofre-kms/kms.sock')
    .option('--cofre-address <url>', 'Cofre address (env COFRE_ADDR)')
    .option('--cofre-ca-cert <file>', 'PEM CA of Cofre (env COFRE_CACERT)')
    .option('--transit-mount <path>', 'mount of the transit engine', 'transit')
    .option('--key <name>', 'the transit key that wraps the API server’s data keys', 'kubernetes')
    .option('--approle-mount <path>', 'mount of the AppRole auth method', 'approle')
    .option('--approle-role-id-file <file>', 'file holding the AppRole role_id')
    .option('--approle-secret-id-file <file>', 'file holding the AppRole secret_id (re-read at each login)')
    .option('--token-file <file>', 'instead of AppRole: a file holding a (periodic) token, re-read at each login')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .action(async (flags: KmsFlags) => {
      try {
        await run(flags);
      } catch (err) {
        process.stderr.write(`Error starting the KMS plugin: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

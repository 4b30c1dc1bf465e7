import { readFileSync } from 'node:fs';
import type { Command } from 'commander';

interface ProviderFlags {
  providerDir: string;
  cofreAddress?: string;
  cofreCaCert?: string;
  kubeconfig?: string;
  mintTokens: boolean;
  kubernetes: boolean;
  podCheckInterval: string;
  logLevel: string;
}

/**
 * `cofre csi-provider`: the Secrets Store CSI Driver's provider for Cofre (docs/csi-provider.md). It mints tokens
 * through TokenRequest only when the driver sends none for the audience asked for, with the pod's own identity.
 */
async function run(flags: ProviderFlags): Promise<void> {
  const [{ default: pino }, { Mounter }, { startProviderServer }, { kubeAccess }, { PodLeases }] = await Promise.all([
    import('pino'),
    import('../kube/csi-provider/mount.js'),
    import('../kube/csi-provider/server.js'),
    import('../kube/csi-provider/kube-access.js'),
    import('../kube/csi-provider/pod-leases.js'),
  ]);
  const env = process.env;
  const logger = pino({ level: flags.logLevel, base: { component: 'csi-provider' } });
  const log = (level: 'info' | 'warn', msg: string, fields?: object): void => logger[level](fields ?? {}, msg);
  const caPath = flags.cofreCaCert ?? env.COFRE_CACERT;
  const defaultCaCert = caPath ? (caPath.includes('-----BEGIN') ? caPath : readFileSync(caPath, 'utf8')) : undefined;
  const kube = flags.kubernetes ? kubeAccess(flags.kubeconfig) : undefined;
  const minter = flags.mintTokens ? kube?.minter : undefined;
  const checkEveryMs = parseSeconds(flags.podCheckInterval);
  // Without the Kubernetes API the provider cannot tell when a pod is gone: its credentials then end with their TTL.
  const podLeases = new PodLeases({ log, ...(kube ? { podExists: kube.podExists, checkEveryMs } : {}) });
  const address = flags.cofreAddress ?? env.COFRE_ADDR ?? env.VAULT_ADDR;
  const mounter = new Mounter({
    ...(address ? { defaultAddress: address } : {}),
    ...(defaultCaCert ? { defaultCaCert } : {}),
    ...(minter ? { minter } : {}),
    podLeases,
    log,
  });
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const server = await startProviderServer({ providerDir: flags.providerDir, mounter, version, log });
  log('info', 'csi provider started', {
    socket: server.socket,
    mint_tokens: Boolean(minter),
    watch_pods: Boolean(kube),
  });
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    podLeases.stop();
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--pod-check-interval: expected seconds, got "${value}"`);
  return n * 1000;
}

export function registerCsiProviderCommand(program: Command): void {
  program
    .command('csi-provider')
    .description('Run the Secrets Store CSI Driver provider (socket cofre.sock in the provider directory)')
    .option(
      '--provider-dir <dir>',
      'where the driver looks for provider sockets',
      '/var/run/secrets-store-csi-providers',
    )
    .option('--cofre-address <url>', 'Cofre address when a SecretProviderClass gives no cofreAddress (env COFRE_ADDR)')
    .option('--cofre-ca-cert <file>', 'PEM CA of Cofre when a SecretProviderClass gives none (env COFRE_CACERT)')
    .option('--kubeconfig <file>', 'for minting tokens outside a cluster (default: the in-cluster service account)')
    .option('--no-mint-tokens', 'never mint a service-account token; use only what the driver sends')
    .option(
      '--no-kubernetes',
      'call no Kubernetes API: no token minting, and dynamic credentials end with their TTL, not with their pod',
    )
    .option('--pod-check-interval <seconds>', 'how often to look for deleted pods whose credentials to revoke', '30')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .action(async (flags: ProviderFlags) => {
      try {
        await run(flags);
      } catch (err) {
        process.stderr.write(`Error starting the CSI provider: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

import type { Command } from 'commander';
import { resolveAddress, resolveCaCert } from './connection.js';
import { cliVersion } from './program.js';

interface ClusterAgentFlags {
  address?: string;
  bootstrapToken?: string;
  namespace?: string;
  deliveryNamespaces?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
  kubeconfig?: string;
  metricsBindAddress: string;
  reportInterval: string;
  logLevel: string;
}

function seconds(value: string): number {
  const n = Number(value.replace(/s$/, ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--report-interval: expected seconds, got "${value}"`);
  return n * 1000;
}

/**
 * `cofre cluster-agent`: runs one cluster's agent of the multi-cluster pipeline (docs/multi-cluster.md). Flags
 * match the Helm chart's cluster-agent Deployment; each has an environment fallback so the token can come from a
 * Secret and never sits on a command line.
 */
async function run(flags: ClusterAgentFlags): Promise<void> {
  const [{ KubeConfig }, { default: pino }, { Registry }, { runClusterAgent }, health] = await Promise.all([
    import('@kubernetes/client-node'),
    import('pino'),
    import('prom-client'),
    import('../kube/cluster-agent/run.js'),
    import('../kube/operator/health-server.js'),
  ]);
  const logger = pino({ level: flags.logLevel, base: { component: 'cluster-agent' } });
  const log = (msg: string, fields?: object): void => logger.info(fields ?? {}, msg);
  const namespace = flags.namespace ?? process.env.POD_NAMESPACE;
  if (!namespace) throw new Error('--namespace (or POD_NAMESPACE) is required: where the agent keeps its keys');
  const kubeConfig = new KubeConfig();
  if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
  else kubeConfig.loadFromDefault();
  const tlsSkipVerify =
    flags.tlsSkipVerify || ['1', 'true'].includes(process.env.COFRE_SKIP_VERIFY ?? process.env.VAULT_SKIP_VERIFY ?? '');

  const agent = await runClusterAgent({
    address: resolveAddress(flags.address),
    caCert: resolveCaCert(flags.caCert),
    tlsSkipVerify,
    kubeConfig,
    namespace,
    ...(flags.deliveryNamespaces ? { deliveryNamespaces: flags.deliveryNamespaces.split(',').filter(Boolean) } : {}),
    bootstrapToken: flags.bootstrapToken || process.env.COFRE_BOOTSTRAP_TOKEN || undefined,
    agentVersion: `cofre-cluster-agent/${cliVersion()}`,
    reportIntervalMs: seconds(flags.reportInterval),
    log,
  });
  const server = await health.startHealthServer({
    address: flags.metricsBindAddress,
    registry: new Registry(),
    ready: () => agent.ready(),
  });

  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await agent.stop();
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

export function registerClusterAgentCommand(program: Command): void {
  program
    .command('cluster-agent')
    .description('Run the multi-cluster agent in this cluster: enrol, follow the deliveries placed here, apply them')
    .option('--address <url>', 'Cofre address (env COFRE_ADDR, VAULT_ADDR; default http://127.0.0.1:8200)')
    .option('--bootstrap-token <token>', 'single-use token for the first enrolment (env COFRE_BOOTSTRAP_TOKEN)')
    .option('--namespace <ns>', "the agent's own namespace, for its keys Secret (default: POD_NAMESPACE)")
    .option(
      '--delivery-namespaces <ns,...>',
      'the namespaces the agent may deliver to, when its RBAC is not cluster-wide (default: all)',
    )
    .option('--ca-cert <path>', 'PEM CA bundle to verify the server (env COFRE_CACERT, VAULT_CACERT)')
    .option('--tls-skip-verify', 'do not verify the server TLS certificate (insecure)')
    .option(
      '--kubeconfig <file>',
      'kubeconfig to use (default: in-cluster config, then KUBECONFIG, then ~/.kube/config)',
    )
    .option('--metrics-bind-address <addr>', 'address of /metrics, /healthz and /readyz', ':9090')
    .option('--report-interval <seconds>', 'how often to report status with the lifecycle maps', '30')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .action(async (flags: ClusterAgentFlags) => {
      try {
        await run(flags);
      } catch (err) {
        // The message names what failed (never the bootstrap token: it is not part of any message).
        process.stderr.write(`Error starting the cluster agent: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

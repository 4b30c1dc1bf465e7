import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration } from '../kube/operator/duration.js';
import type { Log } from '../kube/operator/log.js';

interface OperatorFlags {
  kubeconfig?: string;
  namespace?: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  metricsBindAddress: string;
  concurrency: number;
  logLevel: string;
  rolloutBatchWindow: number;
  namespaceRolloutsPerMinute: number;
}

/** Loopback unless told otherwise: the metrics say which namespaces and objects exist. The chart binds the pod IP. */
const DEFAULT_METRICS_BIND_ADDRESS = '127.0.0.1:9090';
const DEFAULT_CONCURRENCY = 16;

/**
 * `cofre operator kubernetes`: runs the in-cluster operator. With leader election only the replica holding the
 * Lease reconciles; the others wait, ready to take over. Flags match the Helm chart's Deployment.
 */
async function run(flags: OperatorFlags): Promise<void> {
  const [{ KubeConfig }, { default: pino }, { startOperator, operatorRegistry }, { runLeaderElection }, health] =
    await Promise.all([
      import('@kubernetes/client-node'),
      import('pino'),
      import('../kube/operator/index.js'),
      import('../kube/operator/leader.js'),
      import('../kube/operator/health-server.js'),
    ]);
  const logger = pino({ level: flags.logLevel, base: { component: 'operator' } });
  const log: Log = (msg, fields, level = 'info') => logger[level](fields ?? {}, msg);
  const kubeConfig = new KubeConfig();
  if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
  else kubeConfig.loadFromDefault();

  let operator: { stop(): Promise<void>; ready(): boolean } | undefined;
  const start = async (): Promise<void> => {
    operator = await startOperator({
      kubeConfig,
      ...(flags.namespace ? { namespace: flags.namespace } : {}),
      concurrency: flags.concurrency,
      log,
      rollouts: {
        batchWindowMs: flags.rolloutBatchWindow,
        namespaceRolloutsPerMinute: flags.namespaceRolloutsPerMinute,
      },
    });
  };
  const halt = async (): Promise<void> => {
    const running = operator;
    operator = undefined;
    await running?.stop();
  };

  let stopping = false;
  let election: { stop(): Promise<void>; isLeader(): boolean } | undefined;
  if (flags.leaderElect) {
    const namespace = flags.leaderElectionNamespace ?? process.env.POD_NAMESPACE;
    if (!namespace) throw new Error('--leader-election-namespace (or POD_NAMESPACE) is required with --leader-elect');
    const identity = `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`;
    election = runLeaderElection({
      kubeConfig,
      namespace,
      name: flags.leaderElectionId,
      identity,
      onStartedLeading: start,
      // A leader that lost its Lease exits, as controller-runtime's do: a clean restart beats a split brain.
      onStoppedLeading: async () => {
        await halt();
        if (!stopping) process.exit(1);
      },
      log,
    });
  } else await start();

  const server = await health.startHealthServer({
    address: flags.metricsBindAddress,
    registry: operatorRegistry,
    // A standby replica is ready: it is doing what it should, waiting for the Lease.
    ready: () => (election && !election.isLeader() ? true : (operator?.ready() ?? false)),
  });
  log('operator started', {
    leaderElection: flags.leaderElect,
    metrics: flags.metricsBindAddress,
    concurrency: flags.concurrency,
  });

  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await election?.stop();
    await halt();
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

/** A duration flag ("2s", "500ms") in milliseconds, by the operator's one duration parser. */
function parseMs(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 0) throw new InvalidArgumentError('expected a duration such as 2s or 500ms');
  return ms;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('expected a whole number from 1 to 256');
  return n;
}

function parseFlag(value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidArgumentError('expected true or false');
}

export function registerOperatorKubernetesCommand(operator: Command): void {
  operator
    .command('kubernetes')
    .description('Run the Kubernetes operator: syncs CofreSecrets into Secrets and ConfigMaps')
    .option(
      '--kubeconfig <file>',
      'kubeconfig to use (default: in-cluster config, then KUBECONFIG, then ~/.kube/config)',
    )
    .option('--namespace <ns>', 'watch only this namespace (default: all)')
    // Takes an optional value so the chart can pass --leader-elect=true|false.
    .option('--leader-elect [bool]', 'elect one active replica with a coordination.k8s.io Lease', parseFlag, false)
    .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: POD_NAMESPACE)')
    .option('--leader-election-id <name>', 'name of the Lease', 'cofre-operator')
    .addOption(
      new Option(
        '--metrics-bind-address <addr>',
        'address of /metrics, /healthz and /readyz (":9090" for every interface)',
      )
        .env('COFRE_OPERATOR_METRICS_BIND_ADDRESS')
        .default(DEFAULT_METRICS_BIND_ADDRESS),
    )
    .addOption(
      new Option('--concurrency <n>', 'CofreSecrets reconciled at once')
        .env('COFRE_OPERATOR_CONCURRENCY')
        .argParser(parseConcurrency)
        .default(DEFAULT_CONCURRENCY),
    )
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .option(
      '--rollout-batch-window <duration>',
      'changes to one workload closer together than this make one rollout',
      parseMs,
      2_000,
    )
    .option(
      '--namespace-rollouts-per-minute <n>',
      'rollouts each namespace may start per minute (as many at once, then one every 60/n s)',
      parsePositive,
      10,
    )
    .action(async (flags: OperatorFlags) => {
      try {
        await run(flags);
      } catch (err) {
        process.stderr.write(`Error starting the operator: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

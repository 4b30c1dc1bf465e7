import { readFileSync } from 'node:fs';
import type { Command } from 'commander';

interface InjectorFlags {
  listen?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  agentImage?: string;
  agentImagePullPolicy?: string;
  cofreAddress?: string;
  cofreCaCert?: string;
  defaultAuthPath: string;
  defaultAudience: string;
  defaultFilesDir: string;
  logLevel: string;
}

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];

function required(value: string | undefined, what: string): string {
  if (!value) throw new Error(`${what} is required`);
  return value;
}

/** The CA for Cofre, inlined: a path on the injector's disk means nothing inside the pods it mutates. */
function caCertPem(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const pem = value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(`--cofre-ca-cert: ${value.includes('-----BEGIN') ? 'the value' : value} holds no PEM certificate`);
  return pem;
}

/**
 * `cofre injector`: the mutating admission webhook of in-pod delivery (docs/in-pod-delivery.md). Each flag has an
 * environment fallback, as the operator's and the cluster agent's do, so the chart can set them either way.
 */
async function run(flags: InjectorFlags): Promise<void> {
  const [{ default: pino }, { startInjectorServer }] = await Promise.all([
    import('pino'),
    import('../kube/injector/server.js'),
  ]);
  const env = process.env;
  const logger = pino({ level: flags.logLevel, base: { component: 'injector' } });
  const log = (msg: string, fields?: object): void => logger.info(fields ?? {}, msg);
  const pullPolicy = flags.agentImagePullPolicy ?? env.COFRE_AGENT_IMAGE_PULL_POLICY ?? 'IfNotPresent';
  if (!PULL_POLICIES.includes(pullPolicy))
    throw new Error(`--agent-image-pull-policy: expected one of ${PULL_POLICIES.join(', ')}, got ${pullPolicy}`);
  const caCert = caCertPem(flags.cofreCaCert ?? env.COFRE_CACERT ?? env.VAULT_CACERT);
  const listen = flags.listen ?? env.COFRE_INJECTOR_LISTEN ?? ':8443';
  if (!flags.defaultFilesDir.startsWith('/'))
    throw new Error(`--default-files-dir: expected an absolute directory, got ${flags.defaultFilesDir}`);

  const server = await startInjectorServer({
    listen,
    tlsCertFile: required(flags.tlsCertFile ?? env.COFRE_INJECTOR_TLS_CERT_FILE, '--tls-cert-file'),
    tlsKeyFile: required(flags.tlsKeyFile ?? env.COFRE_INJECTOR_TLS_KEY_FILE, '--tls-key-file'),
    defaults: {
      authMount: flags.defaultAuthPath.replace(/^\/+|\/+$/g, '').replace(/^auth\//, ''),
      audience: flags.defaultAudience,
      filesDir: flags.defaultFilesDir,
    },
    agent: {
      image: required(flags.agentImage ?? env.COFRE_AGENT_IMAGE, '--agent-image (or COFRE_AGENT_IMAGE)'),
      imagePullPolicy: pullPolicy,
      cofreAddress: required(
        flags.cofreAddress ?? env.COFRE_ADDR ?? env.VAULT_ADDR,
        '--cofre-address (or COFRE_ADDR): the address the agents in the pods reach Cofre at',
      ),
      ...(caCert ? { caCert } : {}),
    },
    log,
  });
  log('injector started', { listen, port: server.port });

  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

export function registerInjectorCommand(program: Command): void {
  program
    .command('injector')
    .description('Run the mutating admission webhook that injects the Cofre agent into opted-in pods')
    .option('--listen <addr>', 'HTTPS address of /mutate and /healthz (env COFRE_INJECTOR_LISTEN; default :8443)')
    .option(
      '--tls-cert-file <file>',
      'PEM serving certificate (env COFRE_INJECTOR_TLS_CERT_FILE); re-read every minute',
    )
    .option('--tls-key-file <file>', 'PEM private key of the certificate (env COFRE_INJECTOR_TLS_KEY_FILE)')
    .option('--agent-image <image>', 'image of the agent containers, the cofre image (env COFRE_AGENT_IMAGE)')
    .option(
      '--agent-image-pull-policy <policy>',
      'Always, IfNotPresent or Never (env COFRE_AGENT_IMAGE_PULL_POLICY; default IfNotPresent)',
    )
    .option('--cofre-address <url>', 'Cofre address the agents use (env COFRE_ADDR, VAULT_ADDR)')
    .option(
      '--cofre-ca-cert <file>',
      'PEM CA of Cofre, given inline to the agents as COFRE_CACERT (env COFRE_CACERT, VAULT_CACERT)',
    )
    .option('--default-auth-path <mount>', 'Kubernetes auth mount when a pod names none', 'kubernetes')
    .option('--default-audience <aud>', 'audience of the projected token when a pod names none', 'cofre')
    .option('--default-files-dir <dir>', 'where app containers see the files when a pod names none', '/cofre/secrets')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .action(async (flags: InjectorFlags) => {
      try {
        await run(flags);
      } catch (err) {
        process.stderr.write(`Error starting the injector: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

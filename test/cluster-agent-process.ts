/**
 * `cofre cluster-agent` as a child process against a real kube-apiserver, as it runs in a cluster: spawned through
 * tsx from the sources, reporting every second, its output kept for the test to read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface AgentProcess {
  child: ChildProcess;
  /** Everything it wrote (stdout and stderr). */
  output(): string;
  /** Stops it with the signal and resolves with its exit code (at once when it has exited). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startClusterAgent(opts: {
  serverUrl: string;
  kubeconfigPath: string;
  namespace: string;
  /** For the first start only: later starts find their enrolment in the cluster. */
  bootstrapToken?: string;
  /** Also hands each chunk of output here (a test that restarts an agent keeps one log across its processes). */
  onOutput?: (chunk: string) => void;
}): AgentProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, COFRE_ADDR: opts.serverUrl };
  delete env.COFRE_BOOTSTRAP_TOKEN;
  if (opts.bootstrapToken) env.COFRE_BOOTSTRAP_TOKEN = opts.bootstrapToken;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(root, 'src/cli/main.ts'),
      'cluster-agent',
      '--namespace',
      opts.namespace,
      '--kubeconfig',
      opts.kubeconfigPath,
      '--metrics-bind-address',
      '127.0.0.1:0',
      '--report-interval',
      '1',
    ],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const take = (d: Buffer): void => {
    out += d.toString();
    opts.onOutput?.(d.toString());
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

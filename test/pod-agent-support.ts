// What the in-pod agent's tests share: a real control plane whose service-account tokens Cofre's Kubernetes auth
// validates, an in-process Cofre server, a projected-token file minted with TokenRequest (as the kubelet projects
// one), and `cofre agent` run as a real process through tsx with the environment the webhook sets.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { enableKubernetesAuth } from './kube-support.js';
import { startServer, tempDir, writeOk, type InProcessServer } from './support.js';

export const NAMESPACE = 'apps';
export const SERVICE_ACCOUNT = 'web';
export const ROLE = 'app';

export interface AgentWorld {
  cluster: TestCluster;
  srv: InProcessServer;
  core: k8s.CoreV1Api;
  dir: string;
  /** A file holding a fresh service-account token (audience cofre) of apps/web. */
  tokenFile: string;
  /** Every service-account token minted: none may appear in the agent's output. */
  jwts: string[];
  stop(): Promise<void>;
}

/** Policy text for role `app`: what the agent's token may do besides the default policy. */
export async function startAgentWorld(name: string, policy: string): Promise<AgentWorld> {
  const cluster = await startCluster({ name, controllerManager: false });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: SERVICE_ACCOUNT } } });
  const srv = await startServer();
  await enableKubernetesAuth(srv.api, cluster, kc);
  await writeOk(srv.api, 'sys/policies/acl/app', { policy });
  await writeOk(srv.api, `auth/kubernetes/role/${ROLE}`, {
    bound_service_account_names: [SERVICE_ACCOUNT],
    bound_service_account_namespaces: [NAMESPACE],
    audience: 'cofre',
    token_policies: ['app'],
    token_ttl: '1h',
  });
  const dir = tempDir(`pod-agent-${name}`);
  const jwts: string[] = [];
  const tokenFile = join(dir, 'token');
  const minted = await core.createNamespacedServiceAccountToken({
    namespace: NAMESPACE,
    name: SERVICE_ACCOUNT,
    body: { spec: { audiences: ['cofre'], expirationSeconds: 3600 } },
  });
  jwts.push(minted.status!.token);
  writeFileSync(tokenFile, minted.status!.token, { mode: 0o600 });
  return {
    cluster,
    srv,
    core,
    dir,
    tokenFile,
    jwts,
    async stop() {
      await srv.stop();
      await cluster.stop();
    },
  };
}

export interface RunningAgent {
  child: ChildProcess;
  /** stdout and stderr together. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `cofre agent ARGS` through tsx (or another Node.js binary), with only the environment the webhook sets. */
export function spawnAgent(
  args: string[],
  env: Record<string, string>,
  opts: { node?: string; cwd?: string } = {},
): RunningAgent {
  const child = spawn(opts.node ?? process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'agent', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    cwd: opts.cwd ?? process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

export function agentEnv(world: AgentWorld, config: object): Record<string, string> {
  return { COFRE_ADDR: world.srv.url, COFRE_AGENT_CONFIG: JSON.stringify(config) };
}

export function freshDir(world: AgentWorld, name: string): string {
  const dir = join(world.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestDatabase } from '../scripts/test-databases.js';
import { apiClient, freePort, type Api } from './support.js';

/** A `cofre server --config` process on a PostgreSQL store, as one node of a cluster. */
export interface Node {
  name: string;
  url: string;
  api: Api;
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts a node: its own config file in dir, a plain-HTTP listener on a free port, the given PostgreSQL URL.
 * Resolves once it answers sys/health (sealed or not).
 */
export async function startNode(
  dir: string,
  name: string,
  connectionUrl: string,
  opts: { token?: string; built?: boolean } = {},
): Promise<Node> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, `${name}.hcl`);
  writeFileSync(
    config,
    [
      `storage "postgresql" {`,
      `  table = "cofre_cluster"`,
      `}`,
      `listener "tcp" {`,
      `  address = "127.0.0.1:${port}"`,
      `  tls_disable = true`,
      `}`,
      `api_addr = "${url}"`,
      `log_level = "warn"`,
    ].join('\n'),
  );
  // The URL (with its password) comes from the environment, as an operator keeps it out of the file.
  // The built CLI for benchmarks (tsx would cost CPU the server should have), the sources for tests.
  const entry = opts.built ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
  const child = spawn(process.execPath, [...entry, 'server', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COFRE_PG_CONNECTION_URL: connectionUrl },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node ${name} exited: ${out}`);
    const up = await fetch(`${url}/v1/sys/health`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`node ${name} did not answer in 30 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    url,
    api: apiClient(url, opts.token ?? ''),
    child,
    output: () => out,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * Starts one node per name on the PostgreSQL at `connectionUrl`, initialises the store (3 key shares, threshold
 * 2) and unseals every node; each node's client then carries the root token.
 */
export async function startCluster(
  dir: string,
  names: string[],
  connectionUrl: string,
): Promise<{ nodes: Node[]; keys: string[]; root: string }> {
  const nodes = await Promise.all(names.map((name) => startNode(dir, name, connectionUrl)));
  const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 3, secret_threshold: 2 } });
  if (init.status !== 200) throw new Error(`sys/init failed: ${init.text}`);
  const { keys, root_token: root } = init.body as { keys: string[]; root_token: string };
  for (const node of nodes) {
    await unseal(node, keys, 2);
    node.api = apiClient(node.url, root);
  }
  return { nodes, keys, root };
}

/** Unseals a node with the first `threshold` key shares. */
export async function unseal(node: Node, keys: string[], threshold: number): Promise<void> {
  for (const key of keys.slice(0, threshold)) {
    const res = await node.api.call('PUT', 'sys/unseal', { body: { key } });
    if (res.status !== 200) throw new Error(`unseal of ${node.name} failed: ${res.text}`);
  }
}

/** The node that says it leads, among those given, or undefined. */
export async function leaderOf(nodes: Node[]): Promise<Node | undefined> {
  for (const node of nodes) {
    const res = await node.api.call('GET', 'sys/leader').catch(() => undefined);
    if (res?.status === 200 && res.body.is_self === true) return node;
  }
  return undefined;
}

/** The end of a suite on a cluster: its nodes killed, its PostgreSQL stopped, its files removed. */
export async function stopCluster(nodes: Node[], db: TestDatabase | undefined, dir: string): Promise<void> {
  await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
  await db?.stop();
  rmSync(dir, { recursive: true, force: true });
}

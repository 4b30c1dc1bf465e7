import type { Command } from 'commander';
import { apiCommand, clientFrom, collectMap, outputFrom, sanitizePath } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound, usageError } from '../errors.js';
import { stdio } from '../output.js';

const clusterPath = (name: string): string => `sys/cofre/clusters/${name}`;

/** A cluster, delivery or placement name as one path segment (the server checks its syntax). */
export function checkObjectName(name: string, what: string): string {
  const clean = sanitizePath(name);
  if (clean === '' || clean.includes('/')) throw usageError(`Missing or invalid ${what} NAME`);
  return clean;
}

const checkName = (name: string): string => checkObjectName(name, 'cluster');

/** `k=v` arguments as a label map; an argument without `=` is a usage error. */
function labelArgs(pairs: string[]): Record<string, string> {
  let labels: Record<string, string> = {};
  for (const pair of pairs) {
    if (pair.indexOf('=') <= 0) throw usageError(`expected key=value, got "${pair}"`);
    labels = collectMap(pair, labels);
  }
  return labels;
}

/** `cofre cluster ...`: the clusters the multi-cluster pipeline delivers to (docs/multi-cluster.md). */
export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('Manage the clusters Cofre delivers to (register, list, read, label, deregister)');

  apiCommand(cluster, 'register <name>', 'Register a cluster; prints its single-use bootstrap token, once')
    .option('--label <key=value>', 'a label (repeatable)', collectMap)
    .option('--bootstrap-ttl <duration>', 'how long the bootstrap token is valid (default 1h)')
    .addHelpText('after', '\nExample:\n  $ cofre cluster register eu-west-1 -label region=eu -label tier=store')
    .action(async (name: string, flags: CommonFlags & { label?: Record<string, string>; bootstrapTtl?: string }) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const clusterName = checkName(name);
      const existing = await client.read(clusterPath(clusterName));
      if (existing) throw usageError(`cluster "${clusterName}" is already registered (use "cofre cluster label")`);
      const body = {
        labels: flags.label ?? {},
        ...(flags.bootstrapTtl ? { bootstrap_ttl: flags.bootstrapTtl } : {}),
      };
      const secret = await client.write(clusterPath(clusterName), body, 'PUT');
      if (!secret) throw notFound(`cluster "${clusterName}" was not registered`);
      output.secret(secret);
      if (!output.json && !output.field) {
        output.err('\nThe bootstrap token is shown only this once: hand it to the cluster agent to enrol.');
      }
    });

  apiCommand(cluster, 'list', 'List the registered clusters').action(async (flags: CommonFlags) => {
    const client = clientFrom(flags);
    const output = outputFrom(flags);
    const secret = await client.list('sys/cofre/clusters');
    const keys = secret?.data?.keys;
    const names = Array.isArray(keys) ? keys.map(String) : [];
    if (output.field) return output.secret(secret ?? {});
    output.list(names);
  });

  apiCommand(cluster, 'read <name>', 'Show a cluster: labels, state, last seen, agent version, health').action(
    async (name: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const clusterName = checkName(name);
      const secret = await client.read(clusterPath(clusterName));
      if (!secret) throw notFound(`No cluster named: ${clusterName}`);
      output.secret(secret);
    },
  );

  apiCommand(
    cluster,
    'label <name> <pairs...>',
    "Replace a cluster's labels with the given key=value pairs",
    false,
  ).action(async (name: string, pairs: string[], flags: CommonFlags) => {
    const client = clientFrom(flags);
    const clusterName = checkName(name);
    const labels = labelArgs(pairs);
    if (!(await client.read(clusterPath(clusterName)))) throw notFound(`No cluster named: ${clusterName}`);
    await client.write(clusterPath(clusterName), { labels }, 'PUT');
    stdio.stdout.write(`Success! Labelled cluster: ${clusterName}\n`);
  });

  apiCommand(
    cluster,
    'deregister <name>',
    'Deregister a cluster: its agent identity and tokens are revoked at once',
    false,
  ).action(async (name: string, flags: CommonFlags) => {
    const client = clientFrom(flags);
    const clusterName = checkName(name);
    await client.delete(clusterPath(clusterName));
    stdio.stdout.write(`Success! Deregistered cluster: ${clusterName}\n`);
  });
}

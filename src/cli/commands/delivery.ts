import type { Command } from 'commander';
import type { VaultClient } from '../../client/client.js';
import { apiCommand, clientFrom, outputFrom, sanitizePath } from '../common.js';
import type { CommonFlags } from '../common.js';
import { readDefinition } from '../definition-file.js';
import { usageError } from '../errors.js';
import { columns, goString, keyValueTable } from '../format.js';
import { checkObjectName } from './cluster.js';
import { pipelineObjectPath, registerReadListDelete } from './pipeline-objects.js';
import { kvPreflight } from './kv-path.js';

const deliveryPath = (name: string): string => pipelineObjectPath('deliveries', name);

/** A repeatable flag kept as given (commas are part of some values, e.g. `#password,user`). */
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface DeliveryFlags extends CommonFlags {
  namespace?: string;
  secret?: string[];
  env?: string[];
  files?: string[];
  configmap?: string[];
  rollout?: string[];
}

const ROLLOUT_KINDS: Record<string, string> = {
  deployment: 'Deployment',
  statefulset: 'StatefulSet',
  daemonset: 'DaemonSet',
};

/** `NAME=rest`: the item's object name and what follows the first "=". */
function splitItem(flag: string, value: string, form: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw usageError(`--${flag} expects ${form}, got "${value}"`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/**
 * `--secret NAME=MOUNT/PATH[#KEY,...]`: a Secret item from keys of one KV secret. The mount is found as `cofre kv`
 * finds it (sys/internal/ui/mounts), so a mount with slashes in its path works; the path is the KV secret's, without
 * KV v2's `data/`.
 */
async function kvItem(client: VaultClient, flag: string, mode: string, value: string): Promise<unknown> {
  const [name, rest] = splitItem(flag, value, 'NAME=MOUNT/PATH[#KEY,...]');
  const hash = rest.lastIndexOf('#');
  const fullPath = sanitizePath(hash < 0 ? rest : rest.slice(0, hash));
  const keys =
    hash < 0
      ? undefined
      : rest
          .slice(hash + 1)
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean);
  if (keys && keys.length === 0) throw usageError(`--${flag} "${value}": no key after "#"`);
  const { mountPath } = await kvPreflight(client, fullPath);
  const mount = sanitizePath(mountPath);
  const path = sanitizePath(fullPath.slice(mountPath.length));
  if (mount === '' || path === '') throw usageError(`--${flag} "${value}": no KV mount holds "${fullPath}"`);
  return { name, mode, kv: { mount, path, ...(keys ? { keys } : {}) } };
}

/** `--configmap NAME=KEY=VALUE` (repeatable; the keys of one NAME make one ConfigMap). */
function configMapItems(values: string[]): unknown[] {
  const byName = new Map<string, Record<string, string>>();
  for (const value of values) {
    const [name, pair] = splitItem('configmap', value, 'NAME=KEY=VALUE');
    const [key, literal] = splitItem('configmap', pair, 'NAME=KEY=VALUE');
    byName.set(name, { ...byName.get(name), [key]: literal });
  }
  return [...byName].map(([name, literal]) => ({ name, mode: 'configmap', literal }));
}

/** `--rollout KIND/NAME`, the kind in any case (`deployment/shop`). */
function rolloutTarget(value: string): { kind: string; name: string } {
  const slash = value.indexOf('/');
  if (slash <= 0 || slash === value.length - 1) throw usageError(`--rollout expects KIND/NAME, got "${value}"`);
  const kind = value.slice(0, slash);
  return { kind: ROLLOUT_KINDS[kind.toLowerCase()] ?? kind, name: value.slice(slash + 1) };
}

/** The body of a write: the file's definition (if any), then the flags (namespace replaces, items are added). */
async function definitionFrom(
  client: VaultClient,
  file: string | undefined,
  flags: DeliveryFlags,
): Promise<Record<string, unknown>> {
  const body = file ? await readDefinition(file) : {};
  const items: unknown[] = [];
  for (const value of flags.secret ?? []) items.push(await kvItem(client, 'secret', 'secret', value));
  for (const value of flags.env ?? []) items.push(await kvItem(client, 'env', 'env', value));
  for (const value of flags.files ?? []) items.push(await kvItem(client, 'files', 'file', value));
  items.push(...configMapItems(flags.configmap ?? []));
  const rollout = (flags.rollout ?? []).map(rolloutTarget);
  if (!file && !flags.namespace && items.length === 0 && rollout.length === 0) {
    throw usageError(
      'Give the definition as a file ("-" for stdin) and/or with --namespace, --secret, --env, --files, --configmap',
    );
  }
  if (flags.namespace) body.namespace = flags.namespace;
  for (const [key, added] of [
    ['items', items],
    ['rollout', rollout],
  ] as const) {
    if (added.length === 0) continue;
    const existing = body[key] ?? [];
    if (!Array.isArray(existing)) throw usageError(`"${key}" in ${file} must be a list`);
    body[key] = [...existing, ...added];
  }
  return body;
}

/** Where an item's values come from, in a few words (never a value: literal keys only). */
function sourceText(item: Record<string, unknown>): string {
  const kv = item.kv as { mount?: string; path?: string; keys?: string[] } | undefined;
  if (kv) return `kv ${kv.mount}/${kv.path}${kv.keys ? ` (${kv.keys.join(', ')})` : ''}`;
  const literal = item.literal as Record<string, unknown> | undefined;
  return literal ? `literal (${Object.keys(literal).join(', ')})` : '';
}

function deliveryTable(data: Record<string, unknown>): string {
  const rollout = Array.isArray(data.rollout) ? (data.rollout as { kind: string; name: string }[]) : [];
  const rows: [string, string][] = [
    ['namespace', goString(data.namespace)],
    ['revision', goString(data.revision)],
    ['updated_at', goString(data.updated_at)],
    ['source_error', goString(data.source_error ?? '')],
    ['rollout', rollout.map((r) => `${r.kind}/${r.name}`).join(', ')],
  ];
  const items = Array.isArray(data.items) ? (data.items as Record<string, unknown>[]) : [];
  const head = ['Item', 'Mode', 'Type', 'Immutable', 'Source'];
  const itemRows = items.map((item) => [
    goString(item.name),
    goString(item.mode),
    goString(item.type ?? ''),
    item.immutable === undefined ? '' : String(item.immutable),
    sourceText(item),
  ]);
  return `${keyValueTable(rows)}\n${columns([head, head.map((h) => '-'.repeat(h.length)), ...itemRows])}`;
}

/** `cofre delivery ...`: what an application needs in one namespace (docs/multi-cluster.md, "Deliveries"). */
export function registerDeliveryCommands(program: Command): void {
  const delivery = program
    .command('delivery')
    .description('Manage deliveries: what an application needs in a namespace (write, read, list, delete)');

  apiCommand(
    delivery,
    'write <name> [file]',
    'Write a delivery from a JSON or YAML file ("-" for stdin) and/or flags; every change makes a new revision',
  )
    .option('--namespace <namespace>', 'the target namespace (replaces the file\'s "namespace")')
    .option('--secret <name=mount/path[#key,...]>', 'a Secret from keys of a KV secret (repeatable)', collect)
    .option(
      '--env <name=mount/path[#key,...]>',
      'keys of a KV secret as environment variables (written as a Secret until in-pod delivery is available)',
      collect,
    )
    .option(
      '--files <name=mount/path[#key,...]>',
      'keys of a KV secret as in-memory files (written as a Secret until in-pod delivery is available)',
      collect,
    )
    .option('--configmap <name=key=value>', 'a ConfigMap key of non-secret configuration (repeatable)', collect)
    .option('--rollout <kind/name>', 'a Deployment, StatefulSet or DaemonSet to roll on change (repeatable)', collect)
    .addHelpText(
      'after',
      "\nThe write replaces the whole definition; items and rollout targets given as flags are added to the file's." +
        '\n\nExamples:\n  $ cofre delivery write shop shop.yaml\n' +
        '  $ cofre delivery write shop -namespace=shop -secret=shop-db=secret/app/db#password \\\n' +
        '      -configmap=shop-config=LOG_LEVEL=info -rollout=deployment/shop',
    )
    .action(async (name: string, file: string | undefined, flags: DeliveryFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const deliveryName = checkObjectName(name, 'delivery');
      const body = await definitionFrom(client, file, flags);
      const secret = await client.write(deliveryPath(deliveryName), body, 'PUT');
      if (output.json || output.field) return output.secret(secret ?? {});
      output.out(`Success! Wrote delivery: ${deliveryName} (revision ${goString(secret?.data?.revision)})`);
      const sourceError = secret?.data?.source_error;
      if (typeof sourceError === 'string' && sourceError !== '') {
        output.err(`Warning: its sources cannot be resolved yet, so no cluster can apply it: ${sourceError}`);
      }
    });

  registerReadListDelete(delivery, {
    kind: 'delivery',
    collection: 'deliveries',
    readHelp: 'Show a delivery: namespace, revision, items and their sources, rollout',
    deleteHelp: 'Delete a delivery: every cluster it is placed on removes what it delivered',
    table: deliveryTable,
  });
}

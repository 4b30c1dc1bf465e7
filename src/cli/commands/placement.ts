import type { Command } from 'commander';
import { apiCommand, clientFrom, collectMap } from '../common.js';
import type { CommonFlags } from '../common.js';
import { readDefinition } from '../definition-file.js';
import { usageError } from '../errors.js';
import { columns, goString, keyValueTable } from '../format.js';
import { stdio } from '../output.js';
import { checkObjectName } from './cluster.js';
import { pipelineObjectPath, registerReadListDelete } from './pipeline-objects.js';

const placementPath = (name: string): string => pipelineObjectPath('placements', name);

interface PlacementFlags extends CommonFlags {
  delivery?: string;
  selector?: Record<string, string>;
  cluster?: string[];
  allClusters?: boolean;
}

/** What an agent reported of the delivery in one cluster (the placement's `status.clusters.<name>`). */
interface ClusterStatus {
  state?: string;
  desired_revision?: number;
  revision?: number;
  applied_at?: string | null;
  error?: string | null;
  pods?: Record<string, number>;
  notes?: string[];
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The lifecycle map as `rev 2: 3, rev 1: 1`, newest revision first. */
function podsText(pods: Record<string, number> | undefined): string {
  return Object.entries(pods ?? {})
    .sort(([a], [b]) => Number(b) - Number(a))
    .map(([revision, count]) => `rev ${revision}: ${count}`)
    .join(', ');
}

/** The definition rows, then one row per selected cluster: what its agent applied, when, its error and pods. */
function placementTable(data: Record<string, unknown>): string {
  const selector = data.selector as { matchLabels?: Record<string, string> } | null | undefined;
  const status = (data.status ?? {}) as {
    delivery_revision?: number;
    delivery_error?: string | null;
    clusters?: Record<string, ClusterStatus>;
  };
  const labels = selector?.matchLabels;
  const rows: [string, string][] = [
    ['delivery', goString(data.delivery)],
    [
      'selector',
      !labels
        ? ''
        : Object.keys(labels).length === 0
          ? '(every cluster)'
          : Object.entries(labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
    ],
    ['clusters', Array.isArray(data.clusters) ? data.clusters.join(', ') : ''],
    ['delivery_revision', goString(status.delivery_revision ?? '')],
    ['delivery_error', goString(status.delivery_error ?? '')],
  ];
  const head = ['Cluster', 'State', 'Revision', 'Desired', 'Applied At', 'Pods', 'Error'];
  const clusterRows = Object.entries(status.clusters ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, s]) => [
      name,
      goString(s.state ?? ''),
      goString(s.revision ?? 0),
      goString(s.desired_revision ?? 0),
      goString(s.applied_at ?? ''),
      podsText(s.pods),
      goString(s.error ?? ''),
    ]);
  const table =
    clusterRows.length === 0
      ? 'No cluster is selected.\n'
      : columns([head, head.map((h) => '-'.repeat(h.length)), ...clusterRows]);
  // Notes are sentences (e.g. an item written as a Secret instead of the in-pod delivery asked for): below the table.
  const notes = Object.entries(status.clusters ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([name, s]) => (s.notes ?? []).map((note) => `  ${name}: ${note}`));
  return `${keyValueTable(rows)}\n${table}${notes.length > 0 ? `\nNotes:\n${notes.join('\n')}\n` : ''}`;
}

/** `cofre placement ...`: a delivery published to clusters (docs/multi-cluster.md, "Placements"). */
export function registerPlacementCommands(program: Command): void {
  const placement = program
    .command('placement')
    .description('Manage placements: a delivery published to clusters by labels and/or names');

  apiCommand(
    placement,
    'write <name> [file]',
    'Publish a delivery to clusters, from a JSON or YAML file ("-" for stdin) and/or flags',
  )
    .option('--delivery <name>', 'the delivery to publish')
    .option('--selector <key=value>', 'select the clusters with this label (repeatable: all must match)', collectMap)
    .option('--cluster <name>', 'a cluster by name (repeatable)', collect)
    .option('--all-clusters', 'select every registered cluster (an empty selector)')
    .addHelpText(
      'after',
      '\nThe write replaces the whole placement; flags replace the file\'s "delivery" and "selector" and add ' +
        'clusters.\n\nExamples:\n  $ cofre placement write shop-eu -delivery=shop -selector=region=eu\n' +
        '  $ cofre placement write shop-pilot -delivery=shop -cluster=eu-west -cluster=eu-central\n' +
        '  $ cofre placement write shop-eu placement.yaml',
    )
    .action(async (name: string, file: string | undefined, flags: PlacementFlags) => {
      const client = clientFrom(flags);
      const placementName = checkObjectName(name, 'placement');
      if (flags.selector && flags.allClusters) throw usageError('--selector and --all-clusters exclude each other');
      const body = file ? await readDefinition(file) : {};
      if (flags.delivery) body.delivery = flags.delivery;
      if (flags.selector) body.selector = { matchLabels: flags.selector };
      if (flags.allClusters) body.selector = { matchLabels: {} };
      if (flags.cluster) {
        const existing = body.clusters ?? [];
        if (!Array.isArray(existing)) throw usageError(`"clusters" in ${file} must be a list`);
        body.clusters = [...existing, ...flags.cluster];
      }
      if (body.delivery === undefined) throw usageError('Which delivery? Give --delivery or "delivery" in the file');
      await client.write(placementPath(placementName), body, 'PUT');
      stdio.stdout.write(`Success! Wrote placement: ${placementName}\n`);
    });

  registerReadListDelete(placement, {
    kind: 'placement',
    collection: 'placements',
    readHelp: 'Show a placement and, per selected cluster, the revision applied, when, errors and pods per revision',
    deleteHelp:
      'Unpublish: each cluster it selected (and no other placement of the delivery does) removes what it delivered',
    table: placementTable,
  });
}

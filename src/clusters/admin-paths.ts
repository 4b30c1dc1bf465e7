import { assertExistenceAsAuthorised } from '../core/authorised-existence.js';
import type { Field, PathRecord, Request } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { badRequest, notFound } from '../core/errors.js';
import { checkName, DEFAULT_GRACE_PERIOD, parseDelivery, parsePlacement } from './definitions.js';
import { fingerprint } from './agent-identity.js';
import { parseLabels } from './labels.js';
import { previewDelivery, previewPlacement } from './preview.js';
import { checkGainedSourcesReadable, checkSourcesReadable } from './source-access.js';
import { clustersOf, DEFAULT_BOOTSTRAP_TTL } from './service.js';
import type { ClusterRecord } from './store.js';

/** A bootstrap token lives at least a second and at most 30 days; 0 or absent is the default hour. */
function bootstrapTtl(value: unknown): number {
  const ttl = (value as number | undefined) ?? 0;
  if (ttl === 0) return DEFAULT_BOOTSTRAP_TTL;
  if (ttl < 1 || ttl > 30 * 24 * 3600) throw badRequest('"bootstrap_ttl" must be between 1s and 720h');
  return ttl;
}

function clusterView(cluster: ClusterRecord): Record<string, unknown> {
  return {
    name: cluster.name,
    cluster_id: cluster.clusterId,
    labels: cluster.labels,
    state: cluster.signingKey ? 'enrolled' : 'pending',
    created_at: cluster.createdAt,
    enrolled_at: cluster.enrolledAt ?? null,
    last_seen: cluster.lastSeen ?? null,
    agent_version: cluster.agentVersion ?? '',
    health: cluster.health ?? '',
    sealing_key_fingerprint: cluster.sealingKey ? fingerprint(cluster.sealingKey) : '',
    signing_key_fingerprint: cluster.signingKey ? fingerprint(cluster.signingKey) : '',
    bootstrap_expires_at: cluster.bootstrap ? new Date(cluster.bootstrap.expiresAt).toISOString() : null,
    deliveries: cluster.reports ?? {},
  };
}

const DELIVERY_FIELDS: Record<string, Field> = {
  namespace: { type: 'string', description: 'The target namespace.', required: true },
  items: { type: 'any', description: 'The objects to deliver and their sources.', required: true },
  rollout: { type: 'any', description: 'Workloads rolled when the delivery changes: [{kind, name}].' },
  grace_period: {
    type: 'duration',
    description:
      "How long a cluster's replaced database credential stays valid at most while its agent has not " +
      'reported the revision that replaced it (default 30m).',
  },
};

const PLACEMENT_FIELDS: Record<string, Field> = {
  delivery: { type: 'string', description: 'The delivery to publish.', required: true },
  selector: {
    type: 'map',
    description: '{matchLabels: {key: value}}; an empty matchLabels selects every cluster.',
  },
  clusters: { type: 'string-list', description: 'Cluster names.' },
};

/** sys/cofre/clusters, deliveries and placements: what administrators (ordinary tokens and policies) manage. */
export function clusterAdminPaths(core: Core): PathRecord[] {
  const service = clustersOf(core);
  const name = (req: Request, what: string): string => checkName(req.params.name ?? '', what);
  return [
    {
      pattern: 'cofre/clusters/?',
      summary: 'Lists the registered clusters.',
      operations: { list: async () => ({ data: { keys: await service.store.listClusters() } }) },
    },
    {
      pattern: 'cofre/clusters/(?<name>[^/]+)',
      summary: 'Registers a cluster (answering its bootstrap token once), reads it, relabels it or deregisters it.',
      description:
        'A write to a new name registers the cluster and answers, once, a single-use bootstrap token; a write to ' +
        'an existing one replaces its labels. Delete deregisters: its identity and agent tokens are revoked at once.',
      rejectUnknownFields: true,
      // Registering is a create and relabelling an update, so a policy can grant one without the other.
      exists: async (req) => (await service.store.cluster(req.params.name ?? '')) !== undefined,
      fields: {
        labels: { type: 'map', description: 'Labels in Kubernetes syntax, which placements select by.' },
        bootstrap_ttl: { type: 'duration', description: 'How long the bootstrap token is valid (default 1h).' },
      },
      operations: {
        update: async (req) => {
          const labels = req.data.labels === undefined ? undefined : parseLabels(req.data.labels, 'labels');
          const ttl = bootstrapTtl(req.data.bootstrap_ttl);
          const cluster = name(req, 'cluster');
          await checkGainedSourcesReadable(core, req.caller, service.store, cluster, labels);
          // A cluster deregistered (or registered) since the request was authorised: a token that may only relabel
          // must not register it again and get its bootstrap token.
          const result = await service.register(cluster, labels, ttl, (exists) =>
            assertExistenceAsAuthorised(req, exists),
          );
          if (!result.created) return undefined;
          return {
            data: {
              name: result.cluster.name,
              cluster_id: result.cluster.clusterId,
              labels: result.cluster.labels,
              bootstrap_token: result.token,
              bootstrap_ttl: ttl,
            },
          };
        },
        read: async (req) => {
          const cluster = await service.store.cluster(name(req, 'cluster'));
          if (!cluster) throw notFound();
          return { data: clusterView(cluster) };
        },
        delete: async (req) => {
          await service.deregister(name(req, 'cluster'));
          return undefined;
        },
      },
    },
    {
      pattern: 'cofre/clusters/(?<name>[^/]+)/bootstrap',
      summary: 'A new single-use bootstrap token for a cluster, to enrol it again with new keys.',
      rejectUnknownFields: true,
      fields: { bootstrap_ttl: { type: 'duration', description: 'How long it is valid (default 1h).' } },
      operations: {
        update: async (req) => {
          const ttl = bootstrapTtl(req.data.bootstrap_ttl);
          const { cluster, token } = await service.newBootstrapToken(name(req, 'cluster'), ttl);
          return {
            data: { name: cluster.name, cluster_id: cluster.clusterId, bootstrap_token: token, bootstrap_ttl: ttl },
          };
        },
      },
    },
    {
      pattern: 'cofre/deliveries/?',
      summary: 'Lists the deliveries.',
      operations: { list: async () => ({ data: { keys: await service.store.listDeliveries() } }) },
    },
    {
      pattern: 'cofre/deliveries/(?<name>[^/]+)',
      summary: 'Writes, reads or deletes a delivery: what an application needs in one namespace.',
      description:
        'items: [{name, mode: secret|configmap|env|file, type?, immutable?, kv: {mount, path, keys?} | database: ' +
        '{mount, role, keys?} | literal: {key: value}}] (database for secret items only, a credential of its own for ' +
        'each cluster; literal for configmap items only; env and file items are written as Secrets until in-pod ' +
        'delivery is available, and the placement status says so); rollout: [{kind, name}]; grace_period. A read ' +
        'shows the definition and revision, never a value.',
      rejectUnknownFields: true,
      exists: async (req) => (await service.store.delivery(req.params.name ?? '')) !== undefined,
      fields: DELIVERY_FIELDS,
      operations: {
        update: async (req) => {
          const definition = parseDelivery(req.data);
          await checkSourcesReadable(core, req.caller, definition);
          const record = await service.writeDelivery(name(req, 'delivery'), definition, (exists) =>
            assertExistenceAsAuthorised(req, exists),
          );
          return { data: { revision: record.revision, source_error: record.sourceError || null } };
        },
        read: async (req) => {
          const record = await service.store.delivery(name(req, 'delivery'));
          if (!record) throw notFound();
          return {
            data: {
              namespace: record.namespace,
              items: record.items,
              rollout: record.rollout,
              grace_period: record.gracePeriod ?? DEFAULT_GRACE_PERIOD,
              revision: record.revision,
              updated_at: record.updatedAt,
              source_error: record.sourceError || null,
            },
          };
        },
        delete: async (req) => {
          await service.deleteDelivery(name(req, 'delivery'));
          return undefined;
        },
      },
    },
    {
      pattern: 'cofre/deliveries/(?<name>[^/]+)/status',
      summary: "A delivery's lifecycle: every cluster its placements select, with what each agent reported.",
      description:
        'Per cluster (as a placement status shows it, plus the placements that select it): the revision it should ' +
        'hold, the revision applied and when, the pods per revision, errors, notes and last_seen.',
      operations: {
        read: async (req) => {
          const status = await service.deliveryStatus(name(req, 'delivery'));
          if (!status) throw notFound();
          return { data: status };
        },
      },
    },
    {
      pattern: 'cofre/deliveries/(?<name>[^/]+)/preview',
      summary: 'Renders the Kubernetes objects a delivery definition would make, without values; writes nothing.',
      description:
        'Takes the fields of a delivery write and answers the revision it would have, each object as the cluster ' +
        'agent would apply it (labels, annotations, type and data keys; every value replaced by a placeholder), ' +
        'the rollout patches and the notes agents would report, or source_error.',
      rejectUnknownFields: true,
      fields: DELIVERY_FIELDS,
      operations: {
        update: async (req) => {
          const definition = parseDelivery(req.data);
          // Data keys are a KV secret's key names: shown only to a token that may read the secret.
          await checkSourcesReadable(core, req.caller, definition);
          return { data: await previewDelivery(core, service.store, name(req, 'delivery'), definition) };
        },
      },
    },
    {
      pattern: 'cofre/placements/?',
      summary: 'Lists the placements.',
      operations: { list: async () => ({ data: { keys: await service.store.listPlacements() } }) },
    },
    {
      pattern: 'cofre/placements/(?<name>[^/]+)',
      summary: 'Publishes a delivery to clusters by selector and/or names; a read shows the per-cluster status.',
      rejectUnknownFields: true,
      exists: async (req) => (await service.store.placement(req.params.name ?? '')) !== undefined,
      fields: PLACEMENT_FIELDS,
      operations: {
        update: async (req) => {
          const definition = parsePlacement(req.data);
          const delivery = await service.store.delivery(definition.delivery);
          if (delivery) await checkSourcesReadable(core, req.caller, delivery);
          await service.writePlacement(name(req, 'placement'), definition, (exists) =>
            assertExistenceAsAuthorised(req, exists),
          );
          return undefined;
        },
        read: async (req) => {
          const status = await service.placementStatus(name(req, 'placement'));
          if (!status) throw notFound();
          return { data: status };
        },
        delete: async (req) => {
          await service.deletePlacement(name(req, 'placement'));
          return undefined;
        },
      },
    },
    {
      pattern: 'cofre/placements/(?<name>[^/]+)/preview',
      summary: 'Which clusters a placement would select, gain and lose if written (or deleted); writes nothing.',
      description:
        'Takes the fields of a placement write, or unpublish=true alone for its deletion, and answers the clusters ' +
        'it would select and, against the placements as they are, the clusters that would start (gains) or stop ' +
        '(loses) holding its delivery.',
      rejectUnknownFields: true,
      fields: {
        ...PLACEMENT_FIELDS,
        delivery: { ...PLACEMENT_FIELDS.delivery!, required: false },
        unpublish: { type: 'bool', description: "Preview the placement's deletion instead of a write." },
      },
      operations: {
        update: async (req) => {
          const placement = name(req, 'placement');
          if (req.data.unpublish === true) {
            if (!(await service.store.placement(placement))) throw notFound(`no placement "${placement}"`);
            return { data: await previewPlacement(service.store, placement, undefined) };
          }
          const definition = parsePlacement(req.data);
          if (!(await service.store.delivery(definition.delivery))) {
            throw badRequest(`no delivery "${definition.delivery}"`);
          }
          return { data: await previewPlacement(service.store, placement, definition) };
        },
      },
    },
  ];
}

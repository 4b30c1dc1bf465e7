import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Caller } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { retryOnConflict } from '../core/conflict-retry.js';
import { badRequest, CofreError, notFound, permissionDenied } from '../core/errors.js';
import { CLUSTER_AGENT_POLICY_NAME } from '../core/policy/builtin.js';
import { StorageConflictError } from '../core/storage.js';
import { StorageView } from '../core/storage-view.js';
import type { TokenEntry } from '../core/token-store.js';
import {
  checkFreshness,
  checkSigningPublicKey,
  fingerprint,
  LOGIN_WINDOW_MS,
  NonceCache,
  signatureValid,
  type LoginProof,
} from './agent-identity.js';
import { CredentialKeeper } from './credential-keeper.js';
import type { DeliveryDefinition, PlacementDefinition } from './definitions.js';
import { DesiredState, setOf, type SetEntry } from './desired-state.js';
import { AgentConnection, FanOut } from './fan-out.js';
import { hasDatabaseSource, resolvePayload, usesSource, withCredentials } from './payload.js';
import { checkSealingPublicKey, sealBundle } from './sealing.js';
import {
  ClusterStore,
  type BundleRecord,
  type ClusterRecord,
  type DeliveryRecord,
  type DeliveryReport,
} from './store.js';

/** Creation path of agent tokens: `<this>/<cluster_id>`, so one cluster's tokens are revoked by prefix. */
export const AGENT_LOGIN_PATH = 'sys/cofre/agent/login';
export const AGENT_TOKEN_TTL = 15 * 60;
export const AGENT_TOKEN_MAX_TTL = 60 * 60;
export const DEFAULT_BOOTSTRAP_TTL = 60 * 60;
/** Where the pipeline's records live, under the barrier. */
export const CLUSTERS_PREFIX = 'sys/cofre-clusters/';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const now = (): string => new Date().toISOString();

/**
 * The revision a delivery has once this definition is written: the same when neither the definition nor the resolved
 * payload (its digest) changed, the next one otherwise. The delivery preview shows the same number.
 */
export function revisionAfterWrite(
  existing: DeliveryRecord | undefined,
  definition: DeliveryDefinition,
  digest: string,
): number {
  const same =
    existing &&
    JSON.stringify([existing.namespace, existing.items, existing.rollout]) ===
      JSON.stringify([definition.namespace, definition.items, definition.rollout]) &&
    existing.digest === digest;
  return same ? existing.revision : (existing?.revision ?? 0) + 1;
}

/**
 * The multi-cluster pipeline's server side on one node: clusters and their identities, deliveries and placements,
 * the bundles sealed for each cluster, and the agents' streams. One per core (see clustersOf).
 */
export class ClusterService {
  readonly store: ClusterStore;
  readonly fanOut = new FanOut();
  /** The database credentials held for clusters, and their leases' renewal and revocation. */
  readonly keeper: CredentialKeeper;
  private readonly nonces = new NonceCache();
  private listening: AbortController | undefined;
  private refanPending = false;

  constructor(private readonly core: Core) {
    const view = new StorageView(core.barrier, CLUSTERS_PREFIX);
    this.store = new ClusterStore(view, new StorageView(core.barrier.uncached(), CLUSTERS_PREFIX));
    this.keeper = new CredentialKeeper(core, this.store, {
      bumpGeneration: (cluster, clusterId, delivery) => this.bumpGeneration(cluster, clusterId, delivery),
      refan: () => this.refan(),
    });
    core.addBackgroundJob(this.keeper);
    // Another node on the same store wrote a cluster, delivery, placement or report (the barrier has already
    // forgotten its cached copy): the agents connected here are compared with the new definitions, as after a
    // write on this node. Without it they learnt of a placement made on another node only on reconnecting.
    core.invalidation.on(view.prefix, {
      drop: (key) => this.remoteChange(key),
      dropAll: () => {
        this.refan();
        this.keeper.reload();
      },
    });
  }

  /**
   * Another node changed one of the pipeline's keys. A delivery or placement can change any agent's set; a
   * cluster's record only its own agent's, so it matters here only if that agent is connected here (every report
   * an agent makes on another node writes its cluster's record: a fan-out for each would cost a full pass).
   * Bundles and the id and bootstrap indexes change no set.
   */
  private remoteChange(key: string): void {
    if (key.startsWith('deliveries/') || key.startsWith('placements/')) {
      this.refan();
      this.keeper.reconcileSoon();
    } else if (key.startsWith('clusters/')) {
      const name = key.slice('clusters/'.length);
      if (this.fanOut.connections(name).length > 0) this.refan();
      this.keeper.clusterChanged(name, true);
    } else if (key.startsWith('credentials/')) {
      const [cluster = '', delivery = ''] = key.slice('credentials/'.length).split('/');
      void this.keeper.refresh(cluster, delivery).catch(() => undefined);
    }
  }

  /** What clusters should hold changed: the agents are told, and held credentials checked against placements. */
  private changed(): void {
    this.refan();
    this.keeper.reconcileSoon();
  }

  /**
   * A cluster's database credentials of a delivery were replaced or revoked: its revision of that delivery goes up
   * by one (see desired-state.ts, setOf), for it alone. Undefined when the cluster is gone or registered anew.
   */
  private async bumpGeneration(name: string, clusterId: string, delivery: string): Promise<number | undefined> {
    const changed = await this.changeCluster(name, clusterId, (current) => ({
      ...current,
      generations: { ...current.generations, [delivery]: (current.generations?.[delivery] ?? 0) + 1 },
    }));
    return changed?.generations?.[delivery];
  }

  /**
   * A change of a cluster's record: under the cluster's lock, committed with a check of the record it was made from,
   * and made again from what another node (or server thread) wrote meanwhile. Written whole from a stale read, a
   * report or a relabel brought back a cluster deregistered on another node, its signing key with it, or undid
   * another node's relabel. `change` answers the new record (or the one read, to write nothing). Undefined, and
   * nothing written, when the cluster is gone or was registered anew (`clusterId`, when given).
   */
  private changeCluster(
    name: string,
    clusterId: string | undefined,
    change: (current: ClusterRecord) => ClusterRecord,
  ): Promise<ClusterRecord | undefined> {
    return this.store.locks.run(`cluster/${name}`, () =>
      retryOnConflict(
        async () => {
          const read = await this.store.clusterRead(name);
          if (!read || (clusterId !== undefined && read.record.clusterId !== clusterId)) return undefined;
          const updated = change(read.record);
          if (updated === read.record) return updated;
          await this.store.putCluster(updated, read.record.bootstrap?.hash, read.stored);
          return updated;
        },
        () => new CofreError(409, `cluster "${name}" kept changing on other nodes: try again`),
      ),
    );
  }

  // ---- clusters -------------------------------------------------------------------------------------------------

  private newBootstrap(ttl: number): { token: string; bootstrap: { hash: string; expiresAt: number } } {
    const token = `cbt.${randomBytes(32).toString('base64url')}`;
    return { token, bootstrap: { hash: sha256(token), expiresAt: Date.now() + ttl * 1000 } };
  }

  /** Registers a new cluster (a bootstrap token, shown once) or changes an existing one's labels. */
  async register(
    name: string,
    labels: Record<string, string> | undefined,
    bootstrapTtl: number,
    allowed?: (exists: boolean) => Promise<void>,
  ): Promise<{ created: boolean; cluster: ClusterRecord; token?: string }> {
    this.ensureListening();
    const result = await retryOnConflict(
      async () => {
        const existing = await this.store.cluster(name);
        // Registering and relabelling are told apart by the ACL: one that now does the other is asked again.
        await allowed?.(existing !== undefined);
        if (existing) {
          if (labels === undefined) return { created: false, cluster: existing };
          const updated = await this.changeCluster(name, existing.clusterId, (current) => ({ ...current, labels }));
          if (!updated) throw notFound(`cluster "${name}" was deregistered meanwhile`);
          return { created: false, cluster: updated };
        }
        const { token, bootstrap } = this.newBootstrap(bootstrapTtl);
        const cluster: ClusterRecord = {
          name,
          clusterId: randomUUID(),
          labels: labels ?? {},
          createdAt: now(),
          bootstrap,
        };
        // Only where no record is: two nodes registering one name at once made two identities, the later one kept.
        await this.store.locks.run(`cluster/${name}`, () => this.store.putCluster(cluster, undefined, null));
        return { created: true, cluster, token };
      },
      () => new CofreError(409, `cluster "${name}" kept changing on other nodes: try again`),
    );
    this.changed();
    return result;
  }

  async newBootstrapToken(name: string, ttl: number): Promise<{ cluster: ClusterRecord; token: string }> {
    const { token, bootstrap } = this.newBootstrap(ttl);
    const updated = await this.changeCluster(name, undefined, (current) => ({ ...current, bootstrap }));
    if (!updated) throw notFound(`no cluster "${name}"`);
    return { cluster: updated, token };
  }

  /**
   * Deregisters: the record goes first (every agent request checks it), then its tokens and streams. The delete
   * commits only if the record is still the one read (the lock spans this node): a registration made again on another
   * node meanwhile is deleted with its own indexes, not leaving them behind under a cluster ID that has no record.
   */
  async deregister(name: string): Promise<void> {
    const cluster = await this.store.locks.run(`cluster/${name}`, () =>
      retryOnConflict(
        async () => {
          const read = await this.store.clusterRead(name);
          if (read) await this.store.deleteCluster(read.record, read.stored);
          return read?.record;
        },
        () =>
          new CofreError(409, `cluster "${name}" kept changing on other nodes while it was deregistered: try again`),
      ),
    );
    if (!cluster) return;
    this.fanOut.disconnect(name);
    this.keeper.reconcileSoon(name);
    await this.core.tokens.revokeByPath(`${AGENT_LOGIN_PATH}/${cluster.clusterId}`);
  }

  // ---- enrolment and login --------------------------------------------------------------------------------------

  async enrol(
    bootstrapToken: string,
    sealingKey: string,
    signingKey: string,
    agentVersion: string,
  ): Promise<ClusterRecord> {
    const refused = permissionDenied('invalid or expired bootstrap token');
    if (!bootstrapToken.startsWith('cbt.') || bootstrapToken.length > 128) throw refused;
    try {
      await checkSealingPublicKey(sealingKey);
    } catch {
      throw badRequest('"sealing_key" must be a raw 32-byte X25519 public key, base64url');
    }
    checkSigningPublicKey(signingKey);
    const hash = sha256(bootstrapToken);
    const name = await this.store.clusterByBootstrap(hash);
    if (!name) throw refused;
    // Under the cluster's lock: of any number of enrolments racing with one token, the first consumes it. The lock
    // spans this process; the write checks the record is still what was read, so that on several nodes too only
    // one enrolment consumes it (another node's wins the check, and this one is refused as for a used token).
    const { cluster, previous } = await this.store.locks.run(`cluster/${name}`, async () => {
      const read = await this.store.clusterRead(name);
      const record = read?.record;
      if (!read || !record?.bootstrap || record.bootstrap.hash !== hash) throw refused;
      const { bootstrap: _spent, ...rest } = record;
      const expired = record.bootstrap.expiresAt < Date.now();
      const enrolled: ClusterRecord = expired
        ? rest
        : { ...rest, sealingKey, signingKey, enrolledAt: now(), agentVersion };
      try {
        await this.store.putCluster(enrolled, hash, read.stored);
      } catch (err) {
        if (err instanceof StorageConflictError) throw refused;
        throw err;
      }
      if (expired) throw refused;
      return { cluster: enrolled, previous: record.signingKey };
    });
    // Re-enrolled with new keys: the old identity's tokens go (they also fail the key check from now on).
    if (previous) await this.core.tokens.revokeByPath(`${AGENT_LOGIN_PATH}/${cluster.clusterId}`);
    return cluster;
  }

  /** A verified login: the cluster whose key signed it, after the window, the nonce and the signature. */
  async verifyLogin(proof: LoginProof): Promise<ClusterRecord> {
    checkFreshness(proof);
    const refused = permissionDenied('login refused');
    const cluster = await this.store.clusterById(proof.cluster_id);
    if (!cluster?.signingKey || !signatureValid(cluster.signingKey, proof)) throw refused;
    // This node's memory refuses a replay at once; the store refuses one that reaches another node or thread.
    const expiresAt = Date.parse(proof.timestamp) + LOGIN_WINDOW_MS;
    if (
      !this.nonces.claim(cluster.clusterId, proof.nonce, Date.parse(proof.timestamp)) ||
      !(await this.store.claimLoginNonce(cluster.clusterId, proof.nonce, expiresAt))
    ) {
      throw permissionDenied('login refused: nonce already used');
    }
    return cluster;
  }

  /** The token spec of an agent's login: only the built-in agent policy, bound to the cluster id and key. */
  agentToken(cluster: ClusterRecord): Parameters<Core['tokens']['create']>[0] {
    return {
      policies: [CLUSTER_AGENT_POLICY_NAME],
      meta: { cluster: cluster.name, cluster_id: cluster.clusterId, key: fingerprint(cluster.signingKey!) },
      displayName: `cluster-agent-${cluster.name}`,
      ttl: AGENT_TOKEN_TTL,
      explicitMaxTtl: AGENT_TOKEN_MAX_TTL,
      // Not issued by an auth mount, so not renewable through auth/token/renew: the agent logs in again.
      renewable: false,
      parentHash: '',
      path: `${AGENT_LOGIN_PATH}/${cluster.clusterId}`,
    };
  }

  /**
   * The cluster an agent's request comes from. The token must be an agent token, and its cluster must still exist
   * with the same id and key: a request racing the cluster's deregistration or re-enrolment is refused here even
   * before its token's revocation is done.
   */
  async agentOf(caller: Caller | undefined): Promise<ClusterRecord> {
    this.ensureListening();
    const token: TokenEntry | undefined = caller?.token;
    if (!token || !token.path.startsWith(`${AGENT_LOGIN_PATH}/`)) throw permissionDenied('not a cluster agent token');
    const cluster = await this.store.clusterById(token.meta.cluster_id ?? '');
    if (!cluster?.signingKey || fingerprint(cluster.signingKey) !== token.meta.key) throw permissionDenied();
    if (token.path !== `${AGENT_LOGIN_PATH}/${cluster.clusterId}`) throw permissionDenied();
    return cluster;
  }

  // ---- deliveries and placements --------------------------------------------------------------------------------

  /** `allowed` is asked, on each try, whether the write may do what it now does (create or change). */
  async writeDelivery(
    name: string,
    definition: DeliveryDefinition,
    allowed?: (exists: boolean) => Promise<void>,
  ): Promise<DeliveryRecord> {
    this.ensureListening();
    const record = await this.changeDelivery(name, async ({ record: existing }) => {
      await allowed?.(existing !== undefined);
      const resolved = await resolvePayload(this.core, definition);
      const digest = resolved.ok ? resolved.digest : '';
      const revision = existing
        ? revisionAfterWrite(existing, definition, digest)
        : (await this.store.deletedRevision(name)) + 1;
      const same = existing !== undefined && existing.revision === revision;
      const next: DeliveryRecord = {
        name,
        ...definition,
        revision,
        digest,
        sourceError: resolved.ok ? '' : resolved.error,
        updatedAt: same ? existing.updatedAt : now(),
      };
      return { write: next, result: next };
    });
    this.changed();
    return record;
  }

  /**
   * Resolves a delivery's sources as they are now; a changed payload makes a new revision. Returns the record and
   * the payload it was resolved to (when it could be).
   */
  async refreshDelivery(name: string): Promise<{ record: DeliveryRecord; payload?: Buffer } | undefined> {
    let changed = false;
    const result = await this.changeDelivery(name, async ({ record }) => {
      changed = false;
      if (!record) return { result: undefined };
      const resolved = await resolvePayload(this.core, record);
      const digest = resolved.ok ? resolved.digest : '';
      const sourceError = resolved.ok ? '' : resolved.error;
      const payload = resolved.ok ? { payload: resolved.bytes } : {};
      if (digest === record.digest && sourceError === record.sourceError) return { result: { record, ...payload } };
      changed = digest !== record.digest;
      const next = {
        ...record,
        digest,
        sourceError,
        ...(changed ? { revision: record.revision + 1, updatedAt: now() } : {}),
      };
      return { write: next, result: { record: next, ...payload } };
    });
    if (changed) this.changed();
    return result;
  }

  /**
   * A change of a delivery's record: under its lock, committed with a check of the record it was made from, and
   * made again from what another node wrote meanwhile, so that two nodes resolving one delivery at once (one of
   * them before it heard of a KV write) cannot both take its next revision for different contents.
   */
  private changeDelivery<T>(
    name: string,
    change: (read: { record: DeliveryRecord | undefined }) => Promise<{ write?: DeliveryRecord; result: T }>,
  ): Promise<T> {
    return this.store.locks.run(`delivery/${name}`, () =>
      retryOnConflict(
        async () => {
          const read = await this.store.deliveryRead(name);
          const { write, result } = await change(read);
          if (write) await this.store.putDelivery(write, read.stored);
          return result;
        },
        () => new CofreError(409, `delivery "${name}" kept changing on other nodes: try again`),
      ),
    );
  }

  async deleteDelivery(name: string): Promise<void> {
    await this.store.locks.run(`delivery/${name}`, () =>
      retryOnConflict(
        async () => {
          const read = await this.store.deliveryRead(name);
          if (read.record) await this.store.deleteDelivery(read.record, read.stored!);
        },
        () => new CofreError(409, `delivery "${name}" kept changing on other nodes: try again`),
      ),
    );
    this.changed();
  }

  /** As writeDelivery: committed over what it found, `allowed` asked on each try. */
  async writePlacement(
    name: string,
    definition: PlacementDefinition,
    allowed?: (exists: boolean) => Promise<void>,
  ): Promise<void> {
    this.ensureListening();
    if (!(await this.store.delivery(definition.delivery))) throw badRequest(`no delivery "${definition.delivery}"`);
    await this.store.changePlacement(name, async (current) => {
      await allowed?.(current !== undefined);
      return { name, ...definition, updatedAt: now() };
    });
    this.changed();
  }

  async deletePlacement(name: string): Promise<void> {
    await this.store.deletePlacement(name);
    this.changed();
  }

  /** What one cluster's agent reported of a delivery, beside the revision the cluster should hold. */
  private async clusterStatus(
    cluster: ClusterRecord,
    deliveryName: string,
    delivery: DeliveryRecord | undefined,
  ): Promise<Record<string, unknown>> {
    const report = cluster.reports?.[deliveryName];
    const database = delivery !== undefined && hasDatabaseSource(delivery);
    const held = database ? await this.store.credential(cluster.name, deliveryName) : undefined;
    return {
      // Lease ids and errors only: a credential's fields are in its cluster's bundles and nowhere else.
      ...(database
        ? {
            credentials: {
              leases: held?.current.map((c) => c.leaseId) ?? [],
              replaced_leases: held?.retired.map((r) => r.leaseId) ?? [],
              error: held?.error ?? null,
            },
          }
        : {}),
      state: cluster.signingKey ? 'enrolled' : 'pending',
      desired_revision: delivery ? delivery.revision + (cluster.generations?.[delivery.name] ?? 0) : 0,
      revision: report?.revision ?? 0,
      applied_at: report?.applied_at ?? null,
      error: report?.error ?? null,
      pods: report?.pods ?? {},
      notes: report?.notes ?? [],
      last_seen: cluster.lastSeen ?? null,
    };
  }

  /** A placement's status: per selected cluster, what its agent reported of the delivery. */
  async placementStatus(name: string): Promise<Record<string, unknown> | undefined> {
    const placement = await this.store.placement(name);
    if (!placement) return undefined;
    const state = await DesiredState.load(this.store);
    const delivery = state.deliveries.get(placement.delivery);
    const clusters: Record<string, unknown> = {};
    for (const cluster of state.placedOn(placement)) {
      clusters[cluster.name] = await this.clusterStatus(cluster, placement.delivery, delivery);
    }
    return {
      delivery: placement.delivery,
      selector: placement.selector ?? null,
      clusters: placement.clusters,
      status: {
        delivery_revision: delivery?.revision ?? 0,
        delivery_error: delivery ? delivery.sourceError || null : `no delivery "${placement.delivery}"`,
        clusters,
      },
    };
  }

  /**
   * A delivery's lifecycle: every cluster any of its placements selects now (once, with the placements that select
   * it), each as a placement's status shows it. One read of the state, however many placements and clusters.
   */
  async deliveryStatus(name: string): Promise<Record<string, unknown> | undefined> {
    const state = await DesiredState.load(this.store);
    const delivery = state.deliveries.get(name);
    if (!delivery) return undefined;
    const placements = state.placements.filter((p) => p.delivery === name).sort((a, b) => a.name.localeCompare(b.name));
    const by = new Map<string, { cluster: ClusterRecord; placements: string[] }>();
    for (const placement of placements) {
      for (const cluster of state.placedOn(placement)) {
        const entry = by.get(cluster.name) ?? { cluster, placements: [] };
        entry.placements.push(placement.name);
        by.set(cluster.name, entry);
      }
    }
    const clusters: Record<string, unknown> = {};
    for (const [clusterName, { cluster, placements: via }] of [...by].sort(([a], [b]) => a.localeCompare(b))) {
      clusters[clusterName] = { ...(await this.clusterStatus(cluster, name, delivery)), placements: via };
    }
    return {
      delivery: name,
      namespace: delivery.namespace,
      revision: delivery.revision,
      updated_at: delivery.updatedAt,
      source_error: delivery.sourceError || null,
      placements: placements.map((p) => p.name),
      clusters,
    };
  }

  // ---- what an agent fetches and reports ------------------------------------------------------------------------

  async setFor(cluster: ClusterRecord): Promise<SetEntry[]> {
    const state = await DesiredState.load(this.store, [cluster.name]);
    const current = state.clusters.get(cluster.name);
    return current ? setOf(state, current) : [];
  }

  /** The bundle of one delivery for this cluster: sealed once per revision, kept through the barrier. */
  async bundleFor(cluster: ClusterRecord, delivery: string): Promise<BundleRecord> {
    const state = await DesiredState.load(this.store, [cluster.name]);
    if (!state.selected(cluster).has(delivery))
      throw permissionDenied(`delivery "${delivery}" is not placed on this cluster`);
    const refreshed = await this.refreshDelivery(delivery);
    if (!refreshed) throw permissionDenied(`delivery "${delivery}" is not placed on this cluster`);
    const { record } = refreshed;
    if (record.sourceError) throw badRequest(`delivery "${delivery}" cannot be built: ${record.sourceError}`);
    return this.store.locks.run(`bundle/${cluster.name}/${delivery}`, async () => {
      // A database source: this cluster's own credentials, under its own revision of the delivery.
      const own = hasDatabaseSource(record) ? await this.keeper.credentialsFor(cluster, record) : undefined;
      const generation = async (): Promise<number> =>
        (await this.store.cluster(cluster.name))?.generations?.[delivery] ?? 0;
      const revision = own?.revision ?? record.revision + (await generation());
      const stored = await this.store.bundle(cluster.name, delivery);
      if (
        stored &&
        stored.revision === revision &&
        stored.namespace === record.namespace &&
        stored.sealingKey === cluster.sealingKey
      ) {
        return stored;
      }
      const payload = own ? withCredentials(refreshed.payload!, record, own.credentials) : refreshed.payload!;
      const binding = { clusterId: cluster.clusterId, delivery, namespace: record.namespace, revision };
      const bundle: BundleRecord = {
        delivery,
        namespace: record.namespace,
        revision,
        sealingKey: cluster.sealingKey!,
        bundle: await sealBundle(cluster.sealingKey!, binding, payload),
      };
      await this.store.putBundle(cluster.name, bundle);
      await this.changeCluster(cluster.name, cluster.clusterId, (current) =>
        current.handed?.[delivery] === record.namespace
          ? current
          : { ...current, handed: { ...current.handed, [delivery]: record.namespace } },
      );
      return bundle;
    });
  }

  /** An agent's report: last seen, version, health and per delivery what it applied; removals it confirms end. */
  async report(
    cluster: ClusterRecord,
    agentVersion: string,
    health: string,
    reports: Record<string, DeliveryReport>,
  ): Promise<void> {
    const state = await DesiredState.load(this.store, [cluster.name]);
    const selected = state.selected(cluster);
    let done: string[] = [];
    const reported = await this.changeCluster(cluster.name, cluster.clusterId, (current) => {
      const handed = { ...current.handed };
      done = [];
      for (const delivery of Object.keys(handed)) {
        if (!selected.has(delivery) && (reports[delivery]?.revision ?? 0) === 0) {
          delete handed[delivery];
          done.push(delivery);
        }
      }
      return { ...current, lastSeen: now(), agentVersion, health, reports, handed };
    });
    if (!reported) throw permissionDenied();
    for (const delivery of done) await this.store.deleteBundle(cluster.name, delivery);
    // Replaced credentials whose revision this report shows applied can go.
    this.keeper.clusterChanged(cluster.name, false);
  }

  async touch(cluster: ClusterRecord): Promise<void> {
    await this.changeCluster(cluster.name, cluster.clusterId, (current) => ({ ...current, lastSeen: now() }));
  }

  // ---- fan-out --------------------------------------------------------------------------------------------------

  connect(cluster: ClusterRecord, set: SetEntry[]): AgentConnection {
    const connection = new AgentConnection(cluster.name, cluster.clusterId);
    connection.greet(set);
    this.fanOut.add(connection);
    return connection;
  }

  /**
   * Something that may change clusters' sets happened: once the current burst is over, the definitions are read
   * once and every connected agent's set is compared with what it was told.
   */
  refan(): void {
    if (this.refanPending) return;
    this.refanPending = true;
    setImmediate(() => {
      this.refanPending = false;
      this.fanOutNow().catch(() => undefined); // sealed meanwhile: the agents reconnect and get a fresh hello
    });
  }

  private async fanOutNow(): Promise<void> {
    const connected = this.fanOut.connectedClusters();
    if (connected.length === 0) return;
    const state = await DesiredState.load(this.store, connected);
    for (const name of connected) {
      const cluster = state.clusters.get(name);
      for (const connection of this.fanOut.connections(name)) {
        if (!cluster || cluster.clusterId !== connection.clusterId) connection.close();
        else connection.update(setOf(state, cluster));
      }
    }
  }

  /**
   * Follows the change stream in-process: a write to a KV secret that a delivery uses re-resolves that delivery,
   * and a changed payload makes its next revision (then the fan-out tells the agents).
   */
  ensureListening(): void {
    if (this.listening || this.core.sealed) return;
    const controller = new AbortController();
    this.listening = controller;
    const from = this.core.changes.lastIndex;
    // Writes made while nothing listened (after a restart or an unseal, before the first request to these paths)
    // are not in what follows: re-resolve every delivery once, so such a write still makes its revision.
    void this.refreshAllDeliveries();
    void (async () => {
      for await (const delivery of this.core.changes.subscribe(from, controller.signal)) {
        // Events may have been missed (trimmed before they were read, an unseal, notifications lost): every
        // delivery is resolved again instead.
        if (delivery.type === 'reset') {
          await this.refreshAllDeliveries();
          continue;
        }
        const path = delivery.event.path;
        try {
          for (const name of await this.store.listDeliveries()) {
            const record = await this.store.delivery(name);
            if (record && usesSource(record, path)) await this.refreshDelivery(name);
          }
        } catch {
          // One change that could not be followed (sealed meanwhile, a storage error): a fetch re-resolves anyway.
        }
      }
    })()
      .catch(() => undefined)
      // Ended (the log could not be read while sealed): the next request to these paths listens again.
      .finally(() => {
        if (this.listening === controller) this.listening = undefined;
      });
  }

  private async refreshAllDeliveries(): Promise<void> {
    try {
      for (const name of await this.store.listDeliveries()) await this.refreshDelivery(name);
    } catch {
      // Sealed meanwhile or a storage error: a fetch re-resolves anyway.
    }
  }

  /** Stops following the change stream (tests, shutdown). */
  stopListening(): void {
    this.listening?.abort();
    this.listening = undefined;
  }
}

const services = new WeakMap<Core, ClusterService>();

/** The core's cluster service, made on first use and kept for the core's life (across seals). */
export function clustersOf(core: Core): ClusterService {
  let service = services.get(core);
  if (!service) services.set(core, (service = new ClusterService(core)));
  return service;
}

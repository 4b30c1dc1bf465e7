import { KeyLocks } from '../core/key-locks.js';
import { changeJson } from '../core/json-change.js';
import { StorageConflictError, type Storage, type StorageOp } from '../core/storage.js';
import { getJson, jsonBytes, parseJson, putJson } from '../core/storage-view.js';
import type { DeliveryDefinition, PlacementDefinition } from './definitions.js';
import type { SealedBundle } from './sealing.js';

/** What a cluster's agent last reported of one delivery. */
export interface DeliveryReport {
  revision: number;
  applied_at: string;
  error?: string;
  pods: Record<string, number>;
  /** Notes that are not errors (items written as a Secret because in-pod delivery is not available). */
  notes?: string[];
}

export interface ClusterRecord {
  name: string;
  /** Random, new at each registration: a token of an earlier cluster of the same name names another id. */
  clusterId: string;
  labels: Record<string, string>;
  createdAt: string;
  /** SHA-256 of the one bootstrap token that may enrol it, until used or expired. */
  bootstrap?: { hash: string; expiresAt: number };
  sealingKey?: string;
  signingKey?: string;
  enrolledAt?: string;
  lastSeen?: string;
  agentVersion?: string;
  health?: string;
  reports?: Record<string, DeliveryReport>;
  /** Deliveries it was handed a bundle of, with their namespace: what it must be told to remove once unplaced. */
  handed?: Record<string, string>;
  /**
   * Per delivery, how many times this cluster's database credentials were replaced or revoked: added to the
   * delivery's revision, it is the revision this cluster holds (see docs/multi-cluster.md, "Revisions").
   */
  generations?: Record<string, number>;
}

/** A database credential's lease that the pipeline holds for one cluster's delivery. Times are unix ms. */
export interface HeldLease {
  leaseId: string;
  /** The delivery item it fills, and the source it was issued from. */
  item: string;
  mount: string;
  role: string;
  /** The TTL it was issued with: what each renewal extends it by. */
  ttlMs: number;
  issueTime: number;
  expireTime: number;
  maxExpireTime: number;
}

/** The credential sealed into this cluster's bundles now; its fields are kept to seal later revisions too. */
export interface CurrentCredential extends HeldLease {
  data: Record<string, string>;
}

/** A replaced credential, kept alive until the agent reports a revision without it, or its grace period ends. */
export interface RetiredLease extends HeldLease {
  /** The cluster's first revision of the delivery without it: a report of it or a later one lets it go. */
  replacedBy: number;
  revokeAt: number;
}

/** A credential record as read, with the bytes a change of it checks (null: there was none). */
export interface CredentialRead {
  record: CredentialRecord | undefined;
  stored: Uint8Array | null;
}

const credentialKey = (cluster: string, delivery: string): string => `credentials/${cluster}/${delivery}`;

/** credentials/<cluster>/<delivery>: which leases belong to which cluster and delivery. */
export interface CredentialRecord {
  cluster: string;
  clusterId: string;
  delivery: string;
  current: CurrentCredential[];
  retired: RetiredLease[];
  /** Why the last renewal or re-issue failed (never a value), and when it is tried again. */
  error?: string;
  retryAt?: number;
}

export interface DeliveryRecord extends DeliveryDefinition {
  name: string;
  revision: number;
  /** SHA-256 of the last resolved payload, so that only a changed value makes a new revision; never shown. */
  digest: string;
  /** Why the sources could not be resolved at the last attempt (a missing KV secret); "" when they could. */
  sourceError: string;
  updatedAt: string;
}

export interface PlacementRecord extends PlacementDefinition {
  name: string;
  updatedAt: string;
}

/** A bundle sealed for one cluster: kept until its delivery's next revision or its removal is acknowledged. */
export interface BundleRecord {
  delivery: string;
  namespace: string;
  revision: number;
  sealingKey: string;
  bundle: SealedBundle;
}

/** Where a cluster's used login nonces are kept until they leave the login window. */
const loginNonces = (clusterId: string): string => `login-nonces/${clusterId}/`;

/**
 * The multi-cluster state, on its own barrier view (every entry encrypted like any other). Every read-modify-write
 * of one record runs under that record's lock on this node; records that several nodes write are written with a
 * check of what was read.
 */
export class ClusterStore {
  readonly locks = new KeyLocks();

  /**
   * `fresh` is the same view past the barrier's read cache: credential records are read from it, because two nodes
   * write them (the one that issues at a fetch, the one that renews), and a cached copy would undo the other's.
   */
  constructor(
    private readonly storage: Storage,
    private readonly fresh: Storage = storage,
  ) {}

  cluster(name: string): Promise<ClusterRecord | undefined> {
    return getJson<ClusterRecord>(this.storage, `clusters/${name}`);
  }

  /** The cluster with the bytes it was read from, for a write that must check it is still what was read. */
  async clusterRead(name: string): Promise<{ record: ClusterRecord; stored: Uint8Array } | undefined> {
    const stored = await this.storage.get(`clusters/${name}`);
    return stored === undefined ? undefined : { record: parseJson<ClusterRecord>(stored), stored };
  }

  async clusterById(id: string): Promise<ClusterRecord | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
    const index = await getJson<{ name: string }>(this.storage, `cluster-ids/${id}`);
    const cluster = index ? await this.cluster(index.name) : undefined;
    return cluster?.clusterId === id ? cluster : undefined;
  }

  async clusterByBootstrap(hash: string): Promise<string | undefined> {
    return (await getJson<{ name: string }>(this.storage, `bootstrap/${hash}`))?.name;
  }

  /**
   * The cluster, its id index and its bootstrap index in one transaction; `dropBootstrap` is a used or old hash.
   * With `read` (what clusterRead returned, or null for "no record"), nothing is written unless the record is still
   * that: a StorageConflictError says another node changed it meanwhile.
   */
  async putCluster(record: ClusterRecord, dropBootstrap?: string, read?: Uint8Array | null): Promise<void> {
    const ops: StorageOp[] = [
      ...(read !== undefined ? [{ op: 'check' as const, key: `clusters/${record.name}`, value: read }] : []),
      { op: 'put', key: `clusters/${record.name}`, value: jsonBytes(record) },
      { op: 'put', key: `cluster-ids/${record.clusterId}`, value: jsonBytes({ name: record.name }) },
    ];
    if (dropBootstrap && dropBootstrap !== record.bootstrap?.hash)
      ops.push({ op: 'delete', key: `bootstrap/${dropBootstrap}` });
    if (record.bootstrap)
      ops.push({ op: 'put', key: `bootstrap/${record.bootstrap.hash}`, value: jsonBytes({ name: record.name }) });
    await this.storage.transaction(ops);
  }

  /** Deletes a cluster's record with its indexes, bundles and login nonces, if the record is still `read`. */
  async deleteCluster(record: ClusterRecord, read: Uint8Array): Promise<void> {
    const ops: StorageOp[] = [
      { op: 'check', key: `clusters/${record.name}`, value: read },
      { op: 'delete', key: `clusters/${record.name}` },
      { op: 'delete', key: `cluster-ids/${record.clusterId}` },
    ];
    if (record.bootstrap) ops.push({ op: 'delete', key: `bootstrap/${record.bootstrap.hash}` });
    for (const delivery of await this.storage.list(`bundles/${record.name}/`)) {
      ops.push({ op: 'delete', key: `bundles/${record.name}/${delivery}` });
    }
    const nonces = loginNonces(record.clusterId);
    for (const key of await this.storage.list(nonces)) ops.push({ op: 'delete', key: nonces + key });
    await this.storage.transaction(ops);
  }

  /**
   * Records the nonce of an agent's login for every node: false when it is recorded already, a replay that reached
   * another node or server thread (each node's memory of nonces saw only its own). The key is made of the proof's
   * expiry and nonce, both signed, so a replay names the same key, and the check and the write are one transaction.
   * Nonces past their expiry are dropped as the cluster's next login is recorded: a replay of those is refused by
   * the timestamp's window.
   */
  async claimLoginNonce(clusterId: string, nonce: string, expiresAtMs: number, now = Date.now()): Promise<boolean> {
    const folder = loginNonces(clusterId);
    const key = `${folder}${String(expiresAtMs).padStart(16, '0')}.${nonce}`;
    const expired = (await this.storage.list(folder)).filter((k) => Number(k.slice(0, 16)) < now);
    try {
      await this.storage.transaction([
        { op: 'check', key, value: null },
        { op: 'put', key, value: Buffer.from('used') },
        ...expired.map((k): StorageOp => ({ op: 'delete', key: folder + k })),
      ]);
      return true;
    } catch (err) {
      if (err instanceof StorageConflictError) return false;
      throw err;
    }
  }

  listClusters(): Promise<string[]> {
    return this.storage.list('clusters/');
  }

  delivery(name: string): Promise<DeliveryRecord | undefined> {
    return getJson<DeliveryRecord>(this.storage, `deliveries/${name}`);
  }

  /** The delivery with the bytes it was read from (null: none), for a write that checks it is still what was read. */
  async deliveryRead(name: string): Promise<{ record: DeliveryRecord | undefined; stored: Uint8Array | null }> {
    const stored = await this.storage.get(`deliveries/${name}`);
    return stored === undefined
      ? { record: undefined, stored: null }
      : { record: parseJson<DeliveryRecord>(stored), stored };
  }

  /** Writes a delivery unless its record is no longer `read` (a StorageConflictError: another node wrote it). */
  async putDelivery(record: DeliveryRecord, read: Uint8Array | null): Promise<void> {
    await this.storage.transaction([
      { op: 'check', key: `deliveries/${record.name}`, value: read },
      { op: 'put', key: `deliveries/${record.name}`, value: jsonBytes(record) },
    ]);
  }

  /**
   * Deletes a delivery and keeps its last revision: one written again under that name continues from there, so no
   * agent that still holds the old one takes the new one's first revisions for revisions it has.
   */
  async deleteDelivery(record: DeliveryRecord, read: Uint8Array): Promise<void> {
    const kept = await this.deletedRevision(record.name);
    await this.storage.transaction([
      { op: 'check', key: `deliveries/${record.name}`, value: read },
      { op: 'delete', key: `deliveries/${record.name}` },
      {
        op: 'put',
        key: `delivery-revisions/${record.name}`,
        value: jsonBytes({ revision: Math.max(kept, record.revision) }),
      },
    ]);
  }

  /** The last revision of a deleted delivery of this name (0: none). */
  async deletedRevision(name: string): Promise<number> {
    return (await getJson<{ revision: number }>(this.storage, `delivery-revisions/${name}`))?.revision ?? 0;
  }

  listDeliveries(): Promise<string[]> {
    return this.storage.list('deliveries/');
  }

  placement(name: string): Promise<PlacementRecord | undefined> {
    return getJson<PlacementRecord>(this.storage, `placements/${name}`);
  }

  putPlacement(record: PlacementRecord): Promise<void> {
    return putJson(this.storage, `placements/${record.name}`, record);
  }

  /** Writes a placement on what is stored when the write commits (changeJson); undefined from `change` writes none. */
  async changePlacement(
    name: string,
    change: (current: PlacementRecord | undefined) => Promise<PlacementRecord | undefined>,
  ): Promise<void> {
    await changeJson<PlacementRecord>(this.storage, `placements/${name}`, change);
  }

  deletePlacement(name: string): Promise<void> {
    return this.storage.delete(`placements/${name}`);
  }

  listPlacements(): Promise<string[]> {
    return this.storage.list('placements/');
  }

  bundle(cluster: string, delivery: string): Promise<BundleRecord | undefined> {
    return getJson<BundleRecord>(this.storage, `bundles/${cluster}/${delivery}`);
  }

  putBundle(cluster: string, record: BundleRecord): Promise<void> {
    return putJson(this.storage, `bundles/${cluster}/${record.delivery}`, record);
  }

  deleteBundle(cluster: string, delivery: string): Promise<void> {
    return this.storage.delete(`bundles/${cluster}/${delivery}`);
  }

  async credential(cluster: string, delivery: string): Promise<CredentialRecord | undefined> {
    return (await this.credentialRead(cluster, delivery)).record;
  }

  /** A credential record as stored now, with what a change of it checks: its bytes, or null when there is none. */
  async credentialRead(cluster: string, delivery: string): Promise<CredentialRead> {
    const stored = await this.fresh.get(credentialKey(cluster, delivery));
    return { record: stored === undefined ? undefined : parseJson<CredentialRecord>(stored), stored: stored ?? null };
  }

  /**
   * Writes a record only if it is still what `read` found: another node may have changed it meanwhile (a fetch
   * there issues, the keeper here renews). A StorageConflictError says so, and nothing is written.
   */
  async putCredential(record: CredentialRecord, read: CredentialRead): Promise<void> {
    const key = credentialKey(record.cluster, record.delivery);
    await this.fresh.transaction([
      { op: 'check', key, value: read.stored },
      { op: 'put', key, value: jsonBytes(record) },
    ]);
  }

  /** Deletes a record only if it is still what `read` found (as putCredential). */
  async deleteCredential(cluster: string, delivery: string, read: CredentialRead): Promise<void> {
    const key = credentialKey(cluster, delivery);
    await this.fresh.transaction([
      { op: 'check', key, value: read.stored },
      { op: 'delete', key },
    ]);
  }

  /** Every (cluster, delivery) whose credential leases the pipeline holds. */
  async listCredentials(): Promise<{ cluster: string; delivery: string }[]> {
    const out: { cluster: string; delivery: string }[] = [];
    for (const folder of await this.storage.list('credentials/')) {
      const cluster = folder.replace(/\/$/, '');
      for (const delivery of await this.storage.list(`credentials/${cluster}/`)) out.push({ cluster, delivery });
    }
    return out;
  }

  /** The deliveries whose credential leases the pipeline holds for this cluster. */
  credentialsOf(cluster: string): Promise<string[]> {
    return this.storage.list(`credentials/${cluster}/`);
  }

  /** The deliveries this cluster was handed a bundle of (and has not yet acknowledged removing). */
  bundlesOf(cluster: string): Promise<string[]> {
    return this.storage.list(`bundles/${cluster}/`);
  }
}

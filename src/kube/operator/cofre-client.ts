// Talking to Cofre as a CofreSecret's namespace: resolve its connection, log in with a TokenRequest token of the
// namespace's service account (so a namespace reads only what its role allows, even through a cluster-wide
// connection), cache the Cofre token until shortly before it expires, and read KV. Plain API calls go through the
// API client (src/client).
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { LRUCache } from 'lru-cache';
import type { VaultClient } from '../../client/client.js';
import { ApiError, UnreachableError } from '../../client/errors.js';
import type { ConnectionStatus } from './connection-status.js';
import { SlowAddresses } from './slow-addresses.js';
import { checkSourcePath } from './sources.js';
import { connectionKey, type ConnectionKind, type Connections } from './connections.js';
import { kubeCode, kubeMessage, SyncError } from './errors.js';
import type { CofreSecret } from './types.js';

/**
 * A connection's address is its namespace's choice, and the reconcile workers are every namespace's: a server there
 * must not hold one long (each call ends within this, answer included), nor fill the operator's memory.
 */
const CALL_LIMITS = { timeoutMs: 30_000, maxResponseBytes: 8 * 1024 * 1024 };
/** Logins and clients remembered at most (the least recently used go first): far more than a cluster's connections. */
const MAX_IDENTITIES = 4096;

/** Everything that decides which Cofre token a CofreSecret reads with; one token and one change stream per value. */
export interface Identity {
  /** A stable string of all the fields below: the cache and stream key. */
  key: string;
  connection: string;
  address: string;
  caPem?: string;
  mountPath: string;
  role: string;
  audience: string;
  namespace: string;
  serviceAccount: string;
  /** Which connection object it came from, and that object's generation (for its status). */
  connectionRef: { kind: ConnectionKind; namespace: string; name: string };
  connectionGeneration: number;
}

export interface SourceData {
  data: Record<string, unknown>;
  /** The KV v2 version read (0 for KV v1). */
  version: number;
}

interface CachedToken {
  token: string;
  /** Refresh after this time (ms since epoch): a margin before the lease really ends. */
  refreshAt: number;
}

const SA_TOKEN_SECONDS = 600;

export class CofreAccess {
  private readonly core: CoreV1Api;
  /**
   * Bounded: a key names a connection's address, CA, role and service account, so every edit of a connection (a
   * namespace's to make, as often as it likes) makes a new one.
   */
  private readonly tokens = new LRUCache<string, CachedToken>({ max: MAX_IDENTITIES });
  private readonly logins = new Map<string, Promise<string>>();
  /** The audiences the Kubernetes API server accepts tokens for, cluster-wide: learned once (refuseApiAudience). */
  private apiAudiences: string[] | undefined;
  /** Addresses whose calls ran into their deadline lately: not called for a while (slow-addresses.ts). */
  private readonly slow = new SlowAddresses();
  /** One client per address and CA bundle (the client takes the bundle's bytes). */
  private readonly clients = new LRUCache<string, VaultClient>({ max: MAX_IDENTITIES });

  constructor(
    kc: KubeConfig,
    private readonly connections: Pick<Connections, 'get'>,
    /** Told the outcome of every login, for the connection's Ready condition. */
    private readonly status?: Pick<ConnectionStatus, 'report'>,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** The identity a CofreSecret reads with, from the watched connections (no API call). */
  async identity(cs: CofreSecret): Promise<Identity> {
    const ref = cs.spec.connectionRef;
    const kind = ref.kind ?? 'CofreConnection';
    const namespace = cs.metadata!.namespace!;
    const conn = this.connections.get(kind, namespace, ref.name);
    if (!conn) {
      const where = kind === 'ClusterCofreConnection' ? '' : ` in namespace ${namespace}`;
      throw new SyncError('ConnectionNotFound', `${kind} "${ref.name}" not found${where}`);
    }
    const k = conn.spec.auth.kubernetes;
    const caPem = conn.spec.caBundle ? Buffer.from(conn.spec.caBundle, 'base64').toString('utf8') : undefined;
    const fields = {
      connection: connectionKey(kind, namespace, ref.name),
      address: conn.spec.address.replace(/\/+$/, ''),
      caPem,
      mountPath: k.mountPath ?? 'kubernetes',
      role: k.role,
      audience: k.audience ?? 'cofre',
      namespace,
      serviceAccount: k.serviceAccountName ?? 'default',
    };
    return {
      key: JSON.stringify({ ...fields, caPem: caPem && sha256(caPem) }),
      ...fields,
      connectionRef: { kind, namespace: kind === 'ClusterCofreConnection' ? '' : namespace, name: ref.name },
      connectionGeneration: conn.metadata?.generation ?? 0,
    };
  }

  client(id: Identity): VaultClient {
    const caKey = id.caPem ? sha256(id.caPem) : '';
    const clientKey = `${id.address}\n${caKey}`;
    let client = this.clients.get(clientKey);
    if (!client) {
      client = this.slow.client({ address: id.address, caCertBytes: id.caPem, ...CALL_LIMITS });
      this.clients.set(clientKey, client);
    }
    return client;
  }

  /** A Cofre token for the identity: cached, or a fresh login (concurrent callers share one login). */
  async token(id: Identity, fresh = false): Promise<string> {
    const cached = this.tokens.get(id.key);
    if (!fresh && cached && Date.now() < cached.refreshAt) return cached.token;
    let pending = this.logins.get(id.key);
    if (!pending) {
      pending = this.login(id).finally(() => this.logins.delete(id.key));
      this.logins.set(id.key, pending);
    }
    return pending;
  }

  invalidate(id: Identity): void {
    this.tokens.delete(id.key);
  }

  /**
   * Refuses a connection whose audience the Kubernetes API server accepts: the operator would mint a token that works
   * against the API server as the connection's service account, and send it to the connection's address, which the
   * namespace chooses (a user who may write CofreConnections, and not Pods, would get the service account's rights).
   */
  private async refuseApiAudience(id: Identity): Promise<void> {
    // Learned with the caller's own service account, and only a success is kept: a failure (its account missing)
    // is that caller's, never another namespace's.
    let audiences: string[];
    try {
      audiences = this.apiAudiences ??= await this.learnApiAudiences(id);
    } catch (err) {
      const message = `learning the Kubernetes API server's token audiences: ${kubeMessage(err)}`;
      this.status?.report(id, { ok: false, reason: 'TokenRequestFailed', message });
      throw new SyncError('LoginFailed', message);
    }
    if (!audiences.includes(id.audience)) return;
    const message =
      `the token audience ${JSON.stringify(id.audience)} is one the Kubernetes API server accepts: a token for it would ` +
      `let ${id.address} act as service account ${id.namespace}/${id.serviceAccount} on the cluster, so none is ` +
      'requested; use the audience the Cofre role expects (cofre by default)';
    this.status?.report(id, { ok: false, reason: 'LoginFailed', message });
    throw new SyncError('LoginFailed', message);
  }

  /** A token requested with no audience is issued for the API server's own: its `aud` claim names them. */
  private async learnApiAudiences(id: Identity): Promise<string[]> {
    const { aud } = decodeJwt(await this.requestToken(id, [], 600));
    return Array.isArray(aud) ? aud : aud !== undefined ? [aud] : [];
  }

  /** A token of the identity's service account (TokenRequest); no audience: the API server's own. */
  private async requestToken(id: Identity, audiences: string[], seconds: number): Promise<string> {
    const res = await this.core.createNamespacedServiceAccountToken({
      namespace: id.namespace,
      name: id.serviceAccount,
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences, expirationSeconds: seconds },
      },
    });
    return res.status!.token;
  }

  private async login(id: Identity): Promise<string> {
    await this.refuseApiAudience(id);
    let jwt: string;
    try {
      jwt = await this.requestToken(id, [id.audience], SA_TOKEN_SECONDS);
    } catch (err) {
      const why =
        kubeCode(err) === 404
          ? `service account "${id.serviceAccount}" not found in namespace ${id.namespace}`
          : `requesting a token for service account ${id.namespace}/${id.serviceAccount}: ${kubeMessage(err)}`;
      this.status?.report(id, { ok: false, reason: 'TokenRequestFailed', message: why });
      throw new SyncError('LoginFailed', why);
    }
    let auth;
    try {
      const res = await this.client(id).request('POST', `auth/${id.mountPath}/login`, {
        body: { role: id.role, jwt },
        token: null,
        what: `logging in to auth/${id.mountPath} as role "${id.role}"`,
      });
      auth = (res as { auth?: { client_token?: string; lease_duration?: number } } | null)?.auth;
    } catch (err) {
      const detail = err instanceof ApiError ? `${err.status}: ${err.errors.join('; ')}` : (err as Error).message;
      const message =
        `login to ${id.address} auth/${id.mountPath} as role "${id.role}" with service account ` +
        `${id.namespace}/${id.serviceAccount} (token audience ${JSON.stringify(id.audience)}) failed (${detail})`;
      this.status?.report(id, {
        ok: false,
        reason: err instanceof UnreachableError ? 'Unreachable' : 'LoginFailed',
        message,
      });
      throw new SyncError('LoginFailed', message);
    }
    if (!auth?.client_token) {
      const message = `login to ${id.address} returned no token`;
      this.status?.report(id, { ok: false, reason: 'LoginFailed', message });
      throw new SyncError('LoginFailed', message);
    }
    this.status?.report(id, { ok: true, reason: 'LoggedIn', message: '' });
    // Renew at 80% of the lease (at most 5 minutes early); a lease of 0 means no expiry: re-login hourly anyway.
    const lease = (auth.lease_duration ?? 0) > 0 ? auth.lease_duration! * 1000 : 3_600_000;
    this.tokens.set(id.key, {
      token: auth.client_token,
      refreshAt: Date.now() + Math.max(lease * 0.8, lease - 300_000),
    });
    return auth.client_token;
  }

  /** Reads the source; a 403 is retried once with a fresh login (the cached token may have been revoked). */
  async read(id: Identity, source: CofreSecret['spec']['source']): Promise<SourceData> {
    checkSourcePath(source);
    const v2 = (source.kvVersion ?? 2) === 2;
    const apiPath = v2 ? `${source.mount}/data/${source.path}` : `${source.mount}/${source.path}`;
    const query = v2 && source.version ? { version: String(source.version) } : undefined;
    const shown = `${source.mount}/${source.path}${query ? ` version ${source.version}` : ''}`;
    for (let attempt = 0; ; attempt++) {
      const token = await this.token(id, attempt > 0);
      let res;
      try {
        res = (await this.client(id).request('GET', apiPath, {
          query,
          token,
          notFound: 'null',
          what: `reading ${shown}`,
        })) as { data?: Record<string, unknown> | null } | null;
      } catch (err) {
        if (err instanceof ApiError && err.status === 403) {
          if (attempt === 0) continue;
          throw new SyncError(
            'AccessDenied',
            `role "${id.role}" (service account ${id.namespace}/${id.serviceAccount}) may not read ${shown}: ` +
              `permission denied`,
          );
        }
        const detail = err instanceof ApiError ? `${err.status}: ${err.errors.join('; ')}` : (err as Error).message;
        throw new SyncError('SourceUnavailable', `reading ${shown} from ${id.address} failed (${detail})`);
      }
      if (v2) {
        const inner = res?.data as { data?: Record<string, unknown> | null; metadata?: { version?: number } } | null;
        if (!inner?.data) throw new SyncError('SourceNotFound', `${shown} does not exist (or its version is deleted)`);
        return { data: inner.data, version: inner.metadata?.version ?? 0 };
      }
      if (!res?.data) throw new SyncError('SourceNotFound', `${shown} does not exist`);
      return { data: res.data, version: 0 };
    }
  }

  close(): void {
    this.clients.clear();
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

// Whose token a state file holds. The sidecar takes over tokens it finds in state files (the init container's, its
// own previous run's, each `cofre agent exec` run's), and an exec state file is written by an application container:
// before renewing, rendering with or revoking a token it did not log in with itself, the agent checks with Cofre
// (auth/token/lookup-self) that it is a login of this pod's kind: issued by this auth mount's login, for this role,
// to this service account (the one in the pod's projected token). A token minted some other way (auth/token/create
// lets its holder write any metadata, but not the path), of another role or of another service account is refused.
// Only names and paths go into the reasons, never the token.
import { readFile } from 'node:fs/promises';
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import type { AgentConfig } from './config.js';

/** Who the agents of this pod log in as. */
export interface PodIdentity {
  mount: string;
  role: string;
  namespace: string;
  serviceAccount: string;
  /** The service account's uid, when the projected token names it (it does since Kubernetes 1.21). */
  serviceAccountUid?: string;
}

export type TokenVerdict =
  | {
      ok: true;
      accessor: string;
      /** Seconds left (0: no TTL). */
      ttl: number;
      /** The TTL it was created with, asked for again at each renewal (Cofre's, not what a file says). */
      creationTtl: number;
      renewable: boolean;
    }
  | { ok: false; reason: string };

const claim = (claims: Record<string, unknown>, ...keys: string[]): unknown =>
  keys.reduce<unknown>(
    (v, k) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined),
    claims,
  );

/**
 * The pod's identity from the claims of its service-account token (read, not verified: the kubelet wrote the file,
 * and Cofre verified the same token at the agents' own login). Bound tokens carry `kubernetes.io`; older ones the
 * flat `kubernetes.io/serviceaccount/...` claims. Both carry `sub`.
 */
export async function podIdentity(auth: AgentConfig['auth']): Promise<PodIdentity> {
  const jwt = (await readFile(auth.tokenPath, 'utf8')).trim();
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error(`the service-account token at ${auth.tokenPath} is not a JWT`);
  }
  const sub = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(typeof claims.sub === 'string' ? claims.sub : '');
  if (!sub) throw new Error(`the service-account token at ${auth.tokenPath} names no service account`);
  const uid =
    claim(claims, 'kubernetes.io', 'serviceaccount', 'uid') ??
    claims['kubernetes.io/serviceaccount/service-account.uid'];
  return {
    mount: auth.mount,
    role: auth.role,
    namespace: sub[1]!,
    serviceAccount: sub[2]!,
    ...(typeof uid === 'string' && uid ? { serviceAccountUid: uid } : {}),
  };
}

interface LookupSelf {
  accessor?: string;
  path?: string;
  meta?: Record<string, string> | null;
  ttl?: number;
  creation_ttl?: number;
  renewable?: boolean;
}

/**
 * Whether `token` is valid and a login of `identity`; throws only when Cofre could not be asked (then the caller
 * tries again later rather than deciding).
 */
export async function verifyToken(client: VaultClient, token: string, identity: PodIdentity): Promise<TokenVerdict> {
  let data: LookupSelf | undefined;
  try {
    const res = (await client.request('GET', 'auth/token/lookup-self', {
      token,
      what: 'looking up a token found in a state file',
    })) as { data?: LookupSelf } | null;
    data = res?.data;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 401))
      return { ok: false, reason: 'the token is not valid (revoked, expired or never issued)' };
    throw err;
  }
  if (!data?.accessor) return { ok: false, reason: 'Cofre shows nothing of the token' };
  const loginPath = `auth/${identity.mount}/login`;
  if (data.path !== loginPath)
    return { ok: false, reason: `the token was issued by ${data.path ?? 'an unknown path'}, not ${loginPath}` };
  const meta = data.meta ?? {};
  if (meta.role !== identity.role)
    return { ok: false, reason: `the token is of role "${meta.role ?? ''}", not "${identity.role}"` };
  const account = `${meta.service_account_namespace ?? ''}/${meta.service_account_name ?? ''}`;
  const own = `${identity.namespace}/${identity.serviceAccount}`;
  if (account !== own) return { ok: false, reason: `the token is of service account ${account}, not ${own}` };
  if (identity.serviceAccountUid && meta.service_account_uid !== identity.serviceAccountUid)
    return { ok: false, reason: `the token is of another service account named ${own} (another uid)` };
  return {
    ok: true,
    accessor: data.accessor,
    ttl: data.ttl ?? 0,
    creationTtl: data.creation_ttl ?? 0,
    renewable: data.renewable !== false,
  };
}

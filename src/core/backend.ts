import type { Storage, StorageOp } from './storage.js';
import type { TokenEntry } from './token-store.js';

/**
 * Paths as data: an engine, auth method or the system backend declares its paths as records. The router, the
 * field validation, the OpenAPI document and help all read the same records, so they cannot drift apart.
 */
export type Operation = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list';

export type FieldType =
  | 'string'
  | 'int'
  | 'bool'
  | 'duration' // seconds as a number, or a Go-style duration string such as "1h30m"
  | 'map' // a JSON object
  | 'string-list' // an array of strings, or a comma-separated string
  | 'string-slice' // an array of strings, or one string as a single element (SQL statements hold commas)
  | 'any';

export interface Field {
  type: FieldType;
  description: string;
  default?: unknown;
  required?: boolean;
}

/** The caller as the core authenticated it; handlers use it for ownership (token parents, leases). */
export interface Caller {
  tokenId: string;
  accessor: string;
  policies: string[];
  root: boolean;
  displayName: string;
  entityId: string;
  /** The token's entry as it was when the request was authorized. */
  token: TokenEntry;
  /** The token itself, for lookup-self, which shows a token to its holder. */
  clientToken: string;
}

export interface Request {
  operation: Operation;
  /** The path relative to the mount, without a leading slash. */
  path: string;
  /** Named captures of the path pattern. */
  params: Record<string, string>;
  /** Declared fields, validated and converted; undeclared body keys are in `raw` only. */
  data: Record<string, unknown>;
  raw: Record<string, unknown>;
  query: Record<string, string>;
  storage: Storage;
  caller: Caller | undefined;
  mountPoint: string;
  requestId: string;
  /** The client's address as the listener saw it (for CIDR bindings); "" when unknown. */
  remoteAddress: string;
  /** Seconds of response wrapping the client asked for (X-Vault-Wrap-TTL); 0 or absent: none. */
  wrapTtl?: number;
  /** On the sys/wrapping paths that name a wrapping token: that token, validated before authorisation. */
  wrapping?: WrappingToken;
  /**
   * Set on a request that may change a secret (PathRecord.changeScope). Its change-log entry is committed with the
   * handler's first write through `storage`, so a handler that knows the version it writes sets it before then.
   */
  change?: { version?: number };
  /**
   * Set on a write that the core authorised as a create or an update by the path's existence check (PathRecord.
   * exists): whether the caller's ACL also allows the other one. The handler runs later; one that finds the object
   * deleted or created meanwhile asks before doing what it was not authorised for (src/engines/kv/request.ts).
   * Absent where no ACL applies.
   */
  mayAlso?: (operation: 'create' | 'update') => Promise<boolean>;
}

/** A wrapping token a request names (in its body, or as its own token), as the core validated it. */
export interface WrappingToken {
  token: string;
  entry: TokenEntry;
  /** Named in the body by another token's holder, not presented as the request's own token. */
  thirdParty: boolean;
}

/** Vault's wrap_info: what a client gets instead of a wrapped response. */
export interface WrapInfo {
  token: string;
  accessor: string;
  /** Seconds. */
  ttl: number;
  /** RFC 3339. */
  creationTime: string;
  creationPath: string;
  /** The accessor of the token the wrapped response carries (a login, a token create); "" when none. */
  wrappedAccessor: string;
}

/**
 * What a login hands back, Vault's logical.Auth: who logged in and what their token may do. The core issues the
 * token from it (TTLs resolved from the mount's tune, a lease under the login path), so no method issues tokens
 * itself.
 */
export interface LoginAuth {
  policies: string[];
  /** Shown in token lookups and audit logs. */
  metadata?: Record<string, string>;
  /** Without the method's prefix, which the core adds ("kubernetes-" + this). */
  displayName: string;
  /** Seconds; 0 = the mount's default TTL. */
  ttl: number;
  /** Seconds; 0 = the mount's max TTL. Also caps renewals. */
  maxTtl: number;
  /** Seconds; a periodic token is renewed to this each time and has no max TTL. */
  period?: number;
  /** 0 = unlimited. */
  numUses?: number;
  /** The token is refused from addresses outside these CIDR blocks. */
  boundCidrs?: string[];
  /** Default true. */
  renewable?: boolean;
  /**
   * What the method needs to decide on a renewal (a role name, an entity id). Stored with the token, never shown;
   * handed to the method's renewAuth.
   */
  internal?: Record<string, unknown>;
  /** "batch" issues a batch token (not stored, not renewable); service tokens otherwise. */
  tokenType?: 'service' | 'batch';
}

/** What a method's renewAuth sees: the token's own record of its login. */
export interface LoginRenewal {
  internal: Record<string, unknown>;
  metadata: Record<string, string>;
  policies: string[];
  /** The mount's storage. */
  storage: Storage;
}

/** What a change at a path means for the change stream, relative to the mount. */
export interface ChangeScope {
  /** The logical path subscribers know the thing by (KV v2: without data/, metadata/, …). */
  path: string;
  /** The path whose read capability lets a subscriber see the change. */
  aclPath: string;
  kind?: 'write' | 'delete';
}

/** One server-sent event. */
export interface StreamFrame {
  id?: string;
  event: string;
  data: string;
}

/**
 * A dynamic secret a handler has just created. The core gives it a lease (TTL resolved from the secret, the
 * mount's tune and the system defaults), owned by the calling token, and revokes it through the backend's
 * SecretType of the same name when the lease ends.
 */
export interface NewSecret {
  /** Names the backend's SecretType that renews and revokes it. */
  type: string;
  /** What the backend needs to revoke it later (e.g. the username). Stored through the barrier; no passwords. */
  internal: Record<string, unknown>;
  /** Seconds; 0 = the mount's or the system's default. */
  ttl: number;
  /** Seconds; 0 = the mount's or the system's maximum. */
  maxTtl: number;
  renewable: boolean;
}

/** A lease as the backend sees it when asked to renew or revoke it. */
export interface LeaseContext {
  leaseId: string;
  internal: Record<string, unknown>;
  /** The mount's storage. */
  storage: Storage;
  /** When the lease will now expire (renew only). */
  expireTime: Date;
}

/** A kind of dynamic secret: the expiration manager calls back into its backend to renew or revoke it. */
export interface SecretType {
  /** Must be idempotent: a revocation may be retried after a crash or a failure. */
  revoke(lease: LeaseContext): Promise<void>;
  /** Without it, the secret is not renewable. */
  renew?(lease: LeaseContext): Promise<void>;
}

/** Services of the core that backends may use, without reaching into the core itself. */
export interface SystemView {
  /**
   * Whether other processes write the mount's store (nodes sharing PostgreSQL), whose changes key locks cannot
   * keep out: a read-modify-write must then check what it read (a check op). Unknown (not given): assume they do.
   */
  otherWriters?(): boolean;
  /** A password from the named password policy, or from the default policy when no name is given. */
  generatePassword(policyName?: string): Promise<string>;
  /** The mount's TTLs after tune and system defaults, in seconds. */
  leaseTtls(): { defaultTtl: number; maxTtl: number };
  /**
   * Whether the token with this hash is neither revoked nor being revoked, read past every cache (another node
   * may be revoking it). What a write keyed by its caller's token checks after writing (the cubbyhole).
   */
  tokenLive?(tokenHash: string): Promise<boolean>;
  /**
   * Puts a change the mount made on its own (not through a request: a scheduled rotation) on the change stream.
   * `path` and `aclPath` are relative to the mount, as a PathRecord's changeScope. With `commit`, its writes to the
   * mount's storage and the change-log entry are one transaction, so a crash keeps both or neither.
   */
  reportChange?(
    change: { path: string; aclPath: string; requestPath: string },
    commit?: { storage: Storage; ops: StorageOp[] },
  ): Promise<void>;
}

export interface LeaseInfo {
  leaseId: string;
  ttl: number;
  renewable: boolean;
}

export interface AuthInfo {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: string;
  orphan: boolean;
  num_uses: number;
}

export interface Response {
  data?: Record<string, unknown> | null;
  auth?: AuthInfo;
  /** A successful login: the core issues the token and fills `auth`. */
  login?: LoginAuth;
  warnings?: string[];
  lease?: LeaseInfo;
  /** A dynamic secret to put under a lease; the core fills `lease` from it. */
  secret?: NewSecret;
  /** Overrides the HTTP status, e.g. for sys/health's status codes. */
  status?: number;
  /** Sent as-is instead of the Vault envelope (sys/health, sys/seal-status, metrics). */
  rawBody?: unknown;
  contentType?: string;
  /** Vault's legacy shape for some sys paths: data's keys are also copied to the top level of the body. */
  mergeDataToTop?: boolean;
  /** The response was wrapped: the client gets only this (and the warnings). Set by the core. */
  wrapInfo?: WrapInfo;
  /**
   * A handler's own wish to have its answer wrapped (sys/wrapping/rewrap): for `ttl` seconds (shortened by the
   * client's X-Vault-Wrap-TTL), recording `creationPath`, storing `body` (an answer wrapped before) as it is.
   */
  wrap?: { ttl: number; creationPath: string; body: string };
  /**
   * A server-sent-events stream instead of a JSON body (sys/cofre/events). The HTTP layer starts it with a signal
   * that aborts when the client goes away (made only for streams: an AbortController per request is costly).
   */
  stream?: (signal: AbortSignal) => AsyncIterable<StreamFrame>;
}

export type Handler = (req: Request) => Promise<Response | undefined>;

export interface PathRecord {
  /** A regular expression (without anchors) over the path relative to the mount; named groups become params. */
  pattern: string;
  fields?: Record<string, Field>;
  operations: Partial<Record<Operation, Handler>>;
  /** Tells a write apart: true if the target exists (update), false if not (create). Without it a write is an update. */
  exists?: (req: Request) => Promise<boolean>;
  /** Reject body keys that are not declared fields (Vault does this on some endpoints); otherwise they are warned about. */
  rejectUnknownFields?: boolean;
  /** Keep undeclared body keys without a warning (KV v1 stores the whole body). */
  freeForm?: boolean;
  /** Needs the sudo capability besides the operation's own. */
  sudo?: boolean;
  /** Served without a token (sys/init, sys/unseal, …). */
  unauthenticated?: boolean;
  /** Any valid token may call it; the handler checks what the token may see (sys/internal/ui/mounts). */
  anyToken?: boolean;
  /** Served while sealed. */
  whileSealed?: boolean;
  /** Waits for the other requests in flight to end (sys/seal, a snapshot restore): not counted as one of them. */
  drainsRequests?: boolean;
  /**
   * How a successful change through this path appears on the change stream; undefined means "not a change".
   * Without it, a change is reported at the request path.
   */
  changeScope?: (req: Request) => ChangeScope | undefined;
  /**
   * Names a wrapping token (in the body's `token`, or as the request's token), which the core validates before
   * anything else, as Vault does for sys/wrapping/{lookup,unwrap,rewrap}: an invalid one is a 400 whoever asks.
   */
  wrappingToken?: boolean;
  /** Not written to the audit log (health and status probes, which carry nothing and come often). */
  noAudit?: boolean;
  /**
   * Its writes (POST, PUT, DELETE) store nothing: transit's encryption, sys/tools, lookups sent as POST. A server
   * thread serves them itself instead of handing them to the first thread as it does other writes
   * (src/workers/write-forwarding.ts), so they use every thread; unless the answer is to be wrapped, which stores it. Only where they run depends on it: a thread
   * that stores something all the same (a limited-use token's use) stores it correctly.
   */
  storesNothing?: boolean;
  /**
   * What the response's audit entry records in place of the answer's data, for an answer that is already on record
   * (sys/cofre/audit-log answers lines of the log itself: written again, each read would add the lines it read, so
   * the log would grow with every look at it).
   */
  auditedResponseData?: (data: Record<string, unknown>) => Record<string, unknown>;
  /** One line: the OpenAPI summary and the synopsis of the path's help (`?help=1`). */
  summary: string;
  /** Longer text for the help's DESCRIPTION and the OpenAPI description, where a path needs more than its summary. */
  description?: string;
}

export interface Backend {
  type: string;
  paths: PathRecord[];
  /** What the engine or method does, the DESCRIPTION of its mount's help (`?help=1` on the mount itself). */
  help?: string;
  /** The dynamic secrets it hands out, by NewSecret.type. */
  secrets?: Record<string, SecretType>;
  /**
   * Background work (rotation schedules). Started on the node that runs background jobs once unsealed, stopped
   * on seal and unmount. With many nodes on one store only the leader runs it, so a job runs once.
   */
  start?(): void;
  /** Stops background work and releases resources (pools); the backend may be started or used again after. */
  stop?(): Promise<void>;
  /**
   * Another node changed this key of the mount's storage: drop what is cached from it. Only with storage shared
   * between nodes.
   */
  invalidate?(key: string): void;
  /**
   * An auth method's say on renewing a token it issued (auth/token/renew*): throw to refuse (the role is gone or
   * changed), or return the TTL limits that apply now. Without it, tokens of this method renew as any token.
   */
  renewAuth?(renewal: LoginRenewal): Promise<{ ttl?: number; maxTtl?: number } | void>;
  /**
   * Converts the mount's data in place for new options (KV version 1 to 2). The backend stops serving (requests
   * get a retryable error) and returns the storage operations, relative to the mount, that convert everything;
   * the mount table commits them in one transaction with the new options, then builds the backend anew. `cancel`
   * resumes service when that commit fails. Undefined: these options need no conversion.
   */
  prepareUpgrade?(options: Record<string, string>): Promise<{ ops: StorageOp[]; cancel(): void } | undefined>;
}

export interface MountContext {
  storage: Storage;
  mountPoint: string;
  options: Record<string, string>;
  system: SystemView;
}

export type BackendFactory = (ctx: MountContext) => Promise<Backend> | Backend;

import type { Storage } from './storage.js';
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
  warnings?: string[];
  lease?: LeaseInfo;
  /** Overrides the HTTP status, e.g. for sys/health's status codes. */
  status?: number;
  /** Sent as-is instead of the Vault envelope (sys/health, sys/seal-status, metrics). */
  rawBody?: unknown;
  contentType?: string;
  /** Vault's legacy shape for some sys paths: data's keys are also copied to the top level of the body. */
  mergeDataToTop?: boolean;
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
  /**
   * How a successful change through this path appears on the change stream; undefined means "not a change".
   * Without it, a change is reported at the request path.
   */
  changeScope?: (req: Request) => ChangeScope | undefined;
  /** Not written to the audit log (health and status probes, which carry nothing and come often). */
  noAudit?: boolean;
  summary: string;
}

export interface Backend {
  type: string;
  paths: PathRecord[];
}

export interface MountContext {
  storage: Storage;
  mountPoint: string;
  options: Record<string, string>;
}

export type BackendFactory = (ctx: MountContext) => Promise<Backend> | Backend;

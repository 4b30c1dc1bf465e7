import { createHmac, createSecretKey } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { AuthInfo, Caller, WrapInfo } from './backend.js';

/** What the core knows of one request, before salting: the broker hashes it once per device. */
export interface AuditEvent {
  time: Date;
  type: 'request' | 'response';
  requestId: string;
  operation: string;
  path: string;
  mountType: string;
  remoteAddress: string;
  clientToken: string | undefined;
  /** Set once the token and the ACL let the request through; undefined for refused and unauthenticated ones. */
  caller: Caller | undefined;
  requestData: Record<string, unknown>;
  responseData?: Record<string, unknown> | null;
  responseAuth?: AuthInfo | undefined;
  /** A wrapped response: what the client got instead of it (the wrapped answer itself is never on record). */
  responseWrapInfo?: WrapInfo | undefined;
  status?: number;
  error: string;
}

export type Hasher = (value: string) => string;

export function hasherFor(salt: Buffer): Hasher {
  // A key object made once spares each HMAC (ten or more per request) importing the salt again.
  const key = createSecretKey(salt);
  const hmac: Hasher = (value) => `hmac-sha256:${createHmac('sha256', key).update(value).digest('hex')}`;
  // Values that come in nearly every response (a KV write's deletion_time and destroyed, say) are hashed once per
  // device: each HMAC makes a native object, and they were a tenth of the thread that serves audited writes. Only
  // these fixed texts: a memo of what requests send would keep their values (a PIN, say) in memory.
  const fixed = new Map(FIXED_LEAVES.map((text) => [text, hmac(text)]));
  return (value) => (value.length <= 5 && fixed.get(value)) || hmac(value);
}

const FIXED_LEAVES = ['', 'false', 'true'];

/**
 * What a request nobody authorised may put on record. Anyone can send one, so it must cost little: without a
 * bound, a 3 MB body of 200,000 keys costs 400,000 HMACs and 35 MB of log per request, and enough of them fill the
 * disk, after which fail-closed audit refuses everything. A login or an unseal fits well inside these bounds.
 */
export const UNAUTHORISED_LIMITS = {
  /** Leaf values hashed. */
  leaves: 64,
  /** Bytes of key names (kept in clear) and values (hashed) together. */
  bytes: 16 * 1024,
  /** Nesting below this is left out. */
  depth: 8,
  /** Characters of the error message. */
  errorChars: 2048,
};

/** Leaves hashed between two turns of the event loop, so a big authorised request does not stall the server. */
const LEAVES_PER_TURN = 2000;

type Budget = { leaves: number; bytes: number; depth: number };

interface Walk {
  /** Every leaf still to hash: where its hash goes, and the value as text. */
  leaves: { into: Record<string, unknown> | unknown[]; key: string | number; text: string }[];
  budget: Budget | undefined;
  truncated: boolean;
}

/**
 * Copies the structure of a value with each leaf left as a slot to hash later; stops copying once the budget (if
 * any) is spent. Objects are built without a prototype, so keys such as `__proto__` or `constructor` are kept as
 * data rather than taken for Object.prototype's own.
 */
function skeleton(value: unknown, walk: Walk, depth: number): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value !== 'object') return undefined; // leaves are handled by the parent, which knows the slot
  const budget = walk.budget;
  if (budget && depth >= budget.depth) {
    walk.truncated = true;
    return Array.isArray(value) ? [] : Object.create(null);
  }
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value as Record<string, unknown>);
  const out: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : Object.create(null);
  for (const [key, child] of entries) {
    if (budget) {
      const keyBytes = typeof key === 'string' ? key.length : 0;
      const text = child !== null && typeof child !== 'object' ? String(child) : '';
      if (budget.leaves <= 0 || budget.bytes < keyBytes + text.length) {
        walk.truncated = true;
        break;
      }
      budget.bytes -= keyBytes + text.length;
    }
    if (child === null || child === undefined) {
      setSlot(out, key, child);
    } else if (typeof child === 'object') {
      setSlot(out, key, skeleton(child, walk, depth + 1));
    } else {
      if (budget) budget.leaves--;
      setSlot(out, key, '');
      walk.leaves.push({ into: out, key, text: String(child) });
    }
  }
  return out;
}

function setSlot(into: Record<string, unknown> | unknown[], key: string | number, value: unknown): void {
  (into as Record<string | number, unknown>)[key] = value;
}

/**
 * Every leaf value is HMAC'd, numbers and booleans included (a PIN stored as a number is still a secret); keys and
 * structure stay readable so a log can be searched by field name. With a budget, only what fits is kept (and
 * `truncated` says something was left out). Large inputs are hashed a chunk at a time between turns of the event
 * loop: measured on a 200,000-key body, this keeps every stall of the loop in the tens of milliseconds, without the
 * copying and bookkeeping a worker thread would need.
 */
export async function hashValues(
  value: unknown,
  hash: Hasher,
  budget?: Budget,
): Promise<{ value: unknown; truncated: boolean }> {
  if (value === null || value === undefined) return { value, truncated: false };
  if (typeof value !== 'object') return { value: hash(String(value)), truncated: false };
  const walk: Walk = { leaves: [], budget: budget ? { ...budget } : undefined, truncated: false };
  const out = skeleton(value, walk, 0);
  for (let i = 0; i < walk.leaves.length; i++) {
    if (i > 0 && i % LEAVES_PER_TURN === 0) await nextTurn();
    const leaf = walk.leaves[i]!;
    setSlot(leaf.into, leaf.key, hash(leaf.text));
  }
  return { value: out, truncated: walk.truncated };
}

async function hashAll(value: unknown, hash: Hasher): Promise<unknown> {
  return (await hashValues(value, hash)).value;
}

/** The number of keys (or items) at the top of a value, without walking it. */
function topLevelCount(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return Array.isArray(value) ? value.length : Object.keys(value).length;
}

/**
 * Request data as it goes on record: all of it, every value hashed, for an authorised request (Vault's
 * semantics); for one nobody authorised, only what fits in UNAUTHORISED_LIMITS, with a `data_truncated` marker
 * that gives the original number of keys.
 */
async function requestData(event: AuditEvent, hash: Hasher): Promise<Record<string, unknown>> {
  if (event.caller) return { data: (await hashAll(event.requestData, hash)) ?? null };
  const { value, truncated } = await hashValues(event.requestData, hash, UNAUTHORISED_LIMITS);
  if (!truncated) return { data: value ?? null };
  return { data: value, data_truncated: { keys: topLevelCount(event.requestData) } };
}

function boundedError(event: AuditEvent): string {
  const max = UNAUTHORISED_LIMITS.errorChars;
  if (event.caller || event.error.length <= max) return event.error;
  return `${event.error.slice(0, max)}… (${event.error.length} characters)`;
}

/**
 * One device's HMACs of the callers' tokens and accessors, which every entry of a caller shows (a request and its
 * response: four HMACs of two values). Keyed by the token's salted storage hash, never by the token, and by the
 * accessor; bounded, and emptied when full.
 */
export class CallerHashMemo {
  private readonly byKey = new Map<string, string>();

  constructor(
    private readonly hash: Hasher,
    private readonly max = 4096,
  ) {}

  of(key: string, value: string): string {
    let hashed = this.byKey.get(key);
    if (hashed === undefined) {
      hashed = this.hash(value);
      if (this.byKey.size >= this.max) this.byKey.clear();
      this.byKey.set(key, hashed);
    }
    return hashed;
  }
}

/** The client token and accessor as hashed once for an entry, which shows each twice (auth and request). */
interface CallerHashes {
  token: string;
  accessor: string;
}

function authBlock(caller: Caller | undefined, hashed: CallerHashes): Record<string, unknown> | undefined {
  if (!caller) return hashed.token ? { client_token: hashed.token } : undefined;
  return {
    client_token: hashed.token,
    accessor: hashed.accessor,
    display_name: caller.displayName,
    policies: caller.policies,
    token_policies: caller.policies,
    metadata: Object.keys(caller.token.meta).length > 0 ? caller.token.meta : null,
    entity_id: caller.entityId,
    token_type: caller.token.type ?? 'service',
    token_issue_time: new Date(caller.token.creationTime * 1000).toISOString(),
  };
}

/** One audit entry in Vault's JSON layout, hashed with one device's salt. */
export async function formatEntry(
  event: AuditEvent,
  hash: Hasher,
  memo?: CallerHashMemo,
): Promise<Record<string, unknown>> {
  const caller = event.caller;
  // An authenticated caller's token is the one its entry was found by (entry.hash is the token's salted storage
  // hash), so the memo can key it by that hash rather than keep the token itself.
  const known = caller && memo && caller.token.hash ? memo : undefined;
  const hashed: CallerHashes = {
    token: !event.clientToken
      ? ''
      : known
        ? known.of(`t:${caller!.token.hash}`, event.clientToken)
        : hash(event.clientToken),
    accessor: !caller ? '' : known ? known.of(`a:${caller.accessor}`, caller.accessor) : hash(caller.accessor),
  };
  const entry: Record<string, unknown> = {
    time: event.time.toISOString(),
    type: event.type,
    auth: authBlock(event.caller, hashed) ?? null,
    request: {
      id: event.requestId,
      operation: event.operation,
      mount_type: event.mountType,
      client_token: hashed.token,
      client_token_accessor: hashed.accessor,
      namespace: { id: 'root' },
      path: event.path,
      ...(await requestData(event, hash)),
      remote_address: event.remoteAddress,
    },
    error: boundedError(event),
  };
  if (event.type === 'response') {
    // Response data comes from the server's own handlers, so it is hashed whole even for unauthenticated paths
    // (a login's token, an init's key shares).
    const auth = event.responseAuth;
    entry.response = {
      mount_type: event.mountType,
      status: event.status ?? 200,
      data: await hashAll(event.responseData ?? null, hash),
      auth: auth
        ? {
            ...auth,
            client_token: hash(auth.client_token),
            accessor: hash(auth.accessor),
            metadata: await hashAll(auth.metadata, hash),
          }
        : null,
      ...(event.responseWrapInfo ? { wrap_info: wrapInfoEntry(event.responseWrapInfo, hash) } : {}),
    };
  }
  return entry;
}

/**
 * wrap_info as Vault's audit log shows it: the token and accessors HMAC'd like every other token, so a log tells
 * whether a wrapping token was used (its unwrap carries the same HMAC) without giving it away.
 */
function wrapInfoEntry(info: WrapInfo, hash: Hasher): Record<string, unknown> {
  return {
    token: hash(info.token),
    accessor: hash(info.accessor),
    ttl: info.ttl,
    creation_time: info.creationTime,
    creation_path: info.creationPath,
    ...(info.wrappedAccessor ? { wrapped_accessor: hash(info.wrappedAccessor) } : {}),
  };
}

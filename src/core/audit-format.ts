import { createHmac } from 'node:crypto';
import type { AuthInfo, Caller } from './backend.js';

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
  caller: Caller | undefined;
  requestData: Record<string, unknown>;
  responseData?: Record<string, unknown> | null;
  responseAuth?: AuthInfo | undefined;
  status?: number;
  error: string;
}

export type Hasher = (value: string) => string;

export function hasherFor(salt: Buffer): Hasher {
  return (value) => `hmac-sha256:${createHmac('sha256', salt).update(value).digest('hex')}`;
}

/**
 * Every leaf value is HMAC'd, numbers and booleans included (a PIN stored as a number is still a secret); keys and
 * structure stay readable so a log can be searched by field name.
 */
export function hashValues(value: unknown, hash: Hasher): unknown {
  if (value === null || value === undefined) return value;
  if (Array.isArray(value)) return value.map((v) => hashValues(v, hash));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = hashValues(v, hash);
    return out;
  }
  return hash(String(value));
}

function authBlock(
  caller: Caller | undefined,
  token: string | undefined,
  hash: Hasher,
): Record<string, unknown> | undefined {
  if (!caller) return token ? { client_token: hash(token) } : undefined;
  return {
    client_token: token ? hash(token) : '',
    accessor: hash(caller.accessor),
    display_name: caller.displayName,
    policies: caller.policies,
    token_policies: caller.policies,
    metadata: Object.keys(caller.token.meta).length > 0 ? caller.token.meta : null,
    entity_id: caller.entityId,
    token_type: 'service',
    token_issue_time: new Date(caller.token.creationTime * 1000).toISOString(),
  };
}

/** One audit entry in Vault's JSON layout, hashed with one device's salt. */
export function formatEntry(event: AuditEvent, hash: Hasher): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    time: event.time.toISOString(),
    type: event.type,
    auth: authBlock(event.caller, event.clientToken, hash) ?? null,
    request: {
      id: event.requestId,
      operation: event.operation,
      mount_type: event.mountType,
      client_token: event.clientToken ? hash(event.clientToken) : '',
      client_token_accessor: event.caller ? hash(event.caller.accessor) : '',
      namespace: { id: 'root' },
      path: event.path,
      data: hashValues(event.requestData, hash) ?? null,
      remote_address: event.remoteAddress,
    },
    error: event.error,
  };
  if (event.type === 'response') {
    const auth = event.responseAuth;
    entry.response = {
      mount_type: event.mountType,
      status: event.status ?? 200,
      data: hashValues(event.responseData ?? null, hash),
      auth: auth
        ? {
            ...auth,
            client_token: hash(auth.client_token),
            accessor: hash(auth.accessor),
            metadata: hashValues(auth.metadata, hash),
          }
        : null,
    };
  }
  return entry;
}

import type { Response, WrapInfo } from './backend.js';

/**
 * Vault's response envelope. Every field is present, as Vault sends it, so clients that index into it work. It
 * lives in the core because a wrapped response is stored in this shape, to be answered as it is on unwrap.
 */
export function envelope(response: Response, requestId: string, mountType: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    request_id: requestId,
    lease_id: response.lease?.leaseId ?? '',
    renewable: response.lease?.renewable ?? false,
    lease_duration: response.lease?.ttl ?? 0,
    data: response.data ?? null,
    wrap_info: response.wrapInfo ? wrapInfoBody(response.wrapInfo) : null,
    warnings: response.warnings && response.warnings.length > 0 ? response.warnings : null,
    auth: response.auth ?? null,
    mount_type: mountType,
  };
  return response.mergeDataToTop && response.data ? { ...response.data, ...body } : body;
}

/** wrap_info as Vault sends it; wrapped_accessor only when the wrapped response carried a token. */
export function wrapInfoBody(info: WrapInfo): Record<string, unknown> {
  return {
    token: info.token,
    accessor: info.accessor,
    ttl: info.ttl,
    creation_time: info.creationTime,
    creation_path: info.creationPath,
    ...(info.wrappedAccessor ? { wrapped_accessor: info.wrappedAccessor } : {}),
  };
}

export function errorBody(messages: string[]): { errors: string[] } {
  return { errors: messages };
}

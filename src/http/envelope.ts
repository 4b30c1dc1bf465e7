import type { Response } from '../core/backend.js';

/** Vault's response envelope. Every field is present, as Vault sends it, so clients that index into it work. */
export function envelope(response: Response, requestId: string, mountType: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    request_id: requestId,
    lease_id: response.lease?.leaseId ?? '',
    renewable: response.lease?.renewable ?? false,
    lease_duration: response.lease?.ttl ?? 0,
    data: response.data ?? null,
    wrap_info: null,
    warnings: response.warnings && response.warnings.length > 0 ? response.warnings : null,
    auth: response.auth ?? null,
    mount_type: mountType,
  };
  return response.mergeDataToTop && response.data ? { ...response.data, ...body } : body;
}

export function errorBody(messages: string[]): { errors: string[] } {
  return { errors: messages };
}

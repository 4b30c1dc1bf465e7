// A reconcile failure with the Ready condition's reason and a message fit for status, Events and logs: it names
// paths, roles and objects, never a value.

export type FailureReason =
  | 'ConnectionNotFound'
  | 'LoginFailed'
  | 'AccessDenied'
  | 'SourceNotFound'
  | 'SourceUnavailable'
  | 'TemplateFailed'
  | 'TargetConflict'
  | 'TargetWriteFailed'
  | 'RolloutFailed';

export class SyncError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'SyncError';
  }
}

/** The HTTP status of a client-node ApiException (or undefined for a network error). */
export function kubeCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * The API server's own message of a client-node error. The exception's `message` also carries the whole body and
 * response headers, which is too much for a status line; the Status `message` says what went wrong.
 */
export function kubeMessage(err: unknown): string {
  let body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not JSON: fall through to the code
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  const code = kubeCode(err);
  if (code !== undefined) return `HTTP ${code}`;
  return (err as Error)?.message ?? String(err);
}

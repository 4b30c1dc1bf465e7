/**
 * Errors by kind. A CofreError is a user-facing failure that the HTTP layer turns into a 4xx/5xx with Vault's
 * {"errors":[...]} body; anything else thrown is an internal error that becomes a 500 carrying only a request id.
 * Messages must never contain secret values.
 */
export class CofreError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'CofreError';
  }
}

export const badRequest = (message: string): CofreError => new CofreError(400, message);
export const permissionDenied = (message = 'permission denied'): CofreError => new CofreError(403, message);
export const notFound = (message = ''): CofreError => new CofreError(404, message);
export const sealedError = (): CofreError => new CofreError(503, 'Vault is sealed');
export const unsupportedOperation = (): CofreError => new CofreError(405, 'unsupported operation');

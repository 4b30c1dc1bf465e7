import { badRequest } from '../../core/errors.js';

/**
 * Vault's database paths update an entry field by field: a field the request leaves out keeps its stored value.
 * Returns the reader of one request's fields with that rule.
 */
export function fieldsOver(data: Record<string, unknown>): <T>(key: string, stored: T) => T {
  return <T>(key: string, stored: T): T => (data[key] !== undefined ? (data[key] as T) : stored);
}

/** Roles and static roles hand out passwords only; Vault's other credential types are refused by name. */
export function checkCredentialType(data: Record<string, unknown>): void {
  if (data.credential_type !== undefined && data.credential_type !== 'password') {
    throw badRequest('credential_type must be "password"');
  }
}

import type { Response } from '../backend.js';

/**
 * Vault's rule for a LIST (RespondErrorCommon): nothing to list is 404, whichever path was listed. That is no
 * answer, an answer without data (unless it carries warnings), or an empty "keys"; an answer with other data and
 * no "keys" stands. One rule here, so that every engine's LIST answers alike.
 */
export function isEmptyListing(response: Response | undefined): boolean {
  if (!response) return true;
  if ((response.status ?? 200) >= 300 || response.rawBody !== undefined || response.stream) return false;
  const data = response.data ?? {};
  if (Object.keys(data).length === 0) return !(response.warnings && response.warnings.length > 0);
  const keys = data.keys;
  if (keys === undefined || keys === null) return false;
  return Array.isArray(keys) && keys.length === 0;
}

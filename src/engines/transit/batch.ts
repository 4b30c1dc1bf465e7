import type { Field, Response } from '../../core/backend.js';
import { badRequest, CofreError } from '../../core/errors.js';
import { parseFields } from '../../core/fields.js';
import { decodeBase64 } from './ciphertext.js';
import { UserError } from './user-error.js';

/**
 * Vault's batch shape for encrypt, decrypt and rewrap: `batch_input` is a list of items, each answered in order
 * with its result or its own `error`, and `reference` echoed back. A request without it is a batch of one made
 * of its top-level fields, whose error is the request's.
 */

export type Item = Record<string, unknown>;

const itemParse = { rejectUnknown: false, freeForm: true, applyDefaults: false };

/** The items of a request, each converted against the fields an item may carry. */
export function itemsOf(
  data: Record<string, unknown>,
  itemFields: Record<string, Field>,
): { items: Item[]; batch: boolean } {
  const raw = data.batch_input;
  if (raw === undefined) return { items: [data], batch: false };
  if (!Array.isArray(raw)) throw badRequest('failed to parse batch input: batch_input must be a list of objects');
  if (raw.length === 0) throw badRequest('missing batch input to process');
  const items = raw.map((entry, index) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw badRequest(`failed to parse batch input: item ${index} is not an object`);
    }
    try {
      return parseFields(itemFields, entry as Record<string, unknown>, itemParse).data;
    } catch (err) {
      if (err instanceof CofreError) throw badRequest(`failed to parse batch input: item ${index}: ${err.message}`);
      throw err;
    }
  });
  return { items, batch: true };
}

/** Runs one item; a UserError becomes that item's error, anything else is the server's fault and propagates. */
export function runItem(item: Item, work: (item: Item) => Record<string, unknown>): Record<string, unknown> {
  const reference = typeof item.reference === 'string' ? { reference: item.reference } : {};
  try {
    return { ...work(item), ...reference };
  } catch (err) {
    if (err instanceof UserError) return { error: err.message, ...reference };
    throw err;
  }
}

/**
 * The answer: one item's fields, or `batch_results` with Vault's status rule: 400 if any item failed, unless
 * some succeeded and the client chose another code with `partial_failure_response_code`.
 */
export function answer(results: Record<string, unknown>[], batch: boolean, partialCode: unknown): Response {
  if (!batch) {
    const only = results[0]!;
    if (typeof only.error === 'string') throw badRequest(only.error);
    const { reference: _reference, ...data } = only;
    return { data };
  }
  const failures = results.filter((r) => typeof r.error === 'string').length;
  if (failures === 0) return { data: { batch_results: results } };
  const warnings: string[] = [];
  let status = 400;
  if (typeof partialCode === 'number' && failures < results.length) {
    if (partialCode >= 1 && partialCode <= 599) status = partialCode;
    else warnings.push(`invalid HTTP response code override from partial_failure_response_code, reverting to 400`);
  }
  return { data: { batch_results: results }, status, ...(warnings.length > 0 ? { warnings } : {}) };
}

export function base64Field(item: Item, name: string, problem: string): Buffer {
  const value = item[name];
  if (value === undefined || value === '') return Buffer.alloc(0);
  return decodeBase64(String(value), problem);
}

/** A field the item must carry; Vault's words when it does not. */
export function requiredString(item: Item, name: string, missing: string): string {
  const value = item[name];
  if (typeof value !== 'string') throw new UserError(missing);
  return value;
}

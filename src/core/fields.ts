import type { Field } from './backend.js';
import { durationProblemText, readDuration } from './duration.js';
import { badRequest } from './errors.js';
import { getOwn } from './own-keys.js';

/**
 * Whole seconds from a number or a duration ("90", "90s", "1h30m", "7d"), as Vault's parseutil accepts; see
 * duration.ts, the one parser the CLI shares. A 400 names the field otherwise.
 */
export function parseDuration(value: unknown, name: string): number {
  const read = readDuration(value);
  if (!read.ok) throw badRequest(`invalid duration for field "${name}": ${durationProblemText(read.problem)}`);
  return Math.floor(read.seconds);
}

function convert(name: string, field: Field, value: unknown): unknown {
  switch (field.type) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      break;
    case 'int':
      if (typeof value === 'number' && Number.isInteger(value)) return value;
      if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
      break;
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      break;
    case 'duration':
      return parseDuration(value, name);
    case 'map':
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
      break;
    case 'string-list':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      if (typeof value === 'string') return value === '' ? [] : value.split(',').map((s) => s.trim());
      break;
    case 'string-slice':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      if (typeof value === 'string') return value === '' ? [] : [value];
      break;
    case 'any':
      return value;
  }
  const expected = {
    string: 'a string',
    int: 'an integer',
    bool: 'a boolean',
    map: 'an object',
    'string-list': 'a list of strings',
    'string-slice': 'a list of strings',
  }[field.type];
  throw badRequest(`invalid value for field "${name}": expected ${expected}`);
}

/**
 * Validates a request body against a path's declared fields and converts values to their types. Unknown keys are
 * either refused or reported back as warnings, as Vault does.
 */
export function parseFields(
  fields: Record<string, Field>,
  body: Record<string, unknown>,
  opts: { rejectUnknown: boolean; freeForm: boolean; applyDefaults: boolean; requireFields?: boolean },
): { data: Record<string, unknown>; warnings: string[] } {
  const data: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    const field = getOwn(fields, key);
    if (!field) {
      unknown.push(key);
      continue;
    }
    if (value === null || value === undefined) continue;
    data[key] = convert(key, field, value);
  }
  for (const [key, field] of Object.entries(fields)) {
    if (data[key] !== undefined) continue;
    if (field.required && opts.requireFields !== false) throw badRequest(`missing required field "${key}"`);
    if (opts.applyDefaults && field.default !== undefined) data[key] = field.default;
  }
  const warnings: string[] = [];
  if (unknown.length > 0 && !opts.freeForm) {
    if (opts.rejectUnknown) throw badRequest(`unknown fields: ${unknown.sort().join(', ')}`);
    warnings.push(`Endpoint ignored these unrecognized parameters: [${unknown.sort().join(' ')}]`);
  }
  return { data, warnings };
}

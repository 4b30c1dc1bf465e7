/**
 * Request-parameter constraints (allowed_parameters / denied_parameters / required_parameters), evaluated as in
 * Vault's vault/acl.go with its current (1.21+) list semantics: a list value, or a comma-separated string, is
 * checked element by element.
 */
import type { ParameterRules } from './policy.js';

export interface ParameterConstraints {
  allowedParameters: ParameterRules;
  deniedParameters: ParameterRules;
  requiredParameters: string[];
}

/** Vault's strutil.GlobbedStringsMatch: a leading and/or trailing "*" in the policy value is a wildcard. */
export function globMatch(pattern: string, value: string): boolean {
  if (pattern.length < 2) return value === pattern;
  const starts = pattern.startsWith('*');
  const ends = pattern.endsWith('*');
  if (starts && ends) return value.includes(pattern.slice(1, -1));
  if (starts) return value.endsWith(pattern.slice(1));
  if (ends) return value.startsWith(pattern.slice(0, -1));
  return value === pattern;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

/** One value against a policy list: strings glob-match string values; anything else must be deeply equal. */
function inList(value: unknown, list: unknown[]): boolean {
  return list.some((el) => {
    if (el === null || el === undefined || value === null || value === undefined)
      return (el ?? null) === (value ?? null);
    if (typeof el === 'string') return typeof value === 'string' && globMatch(el, value);
    return deepEqual(el, value);
  });
}

// parseutil.ParseCommaStringSlice: "" is the empty list, otherwise split on "," and trim each element.
const commaList = (s: string): string[] => (s === '' ? [] : s.split(',').map((e) => e.trim()));

/** Empty list = any value; otherwise the value itself, or every element of it (list or comma string), must match. */
function allowedValue(value: unknown, list: unknown[]): boolean {
  if (list.length === 0 || inList(value, list)) return true;
  if (Array.isArray(value)) return value.every((v) => inList(v, list));
  // Note: like Vault, "" splits to no elements and so passes any value list.
  if (typeof value === 'string') return commaList(value).every((v) => inList(v, list));
  return false;
}

/** Empty list = every value is denied; otherwise the value itself, or any element of it, matching denies. */
function deniedValue(value: unknown, list: unknown[]): boolean {
  if (list.length === 0 || inList(value, list)) return true;
  if (Array.isArray(value)) return value.some((v) => inList(v, list));
  if (typeof value === 'string') return commaList(value).some((v) => inList(v, list));
  return false;
}

/**
 * Parameters whose values name policies. Handlers store policy names trimmed and lowercased, so the constraint must
 * see them so too: else `denied_parameters = { "token_policies" = ["admin"] }` let " Admin" through, stored as
 * "admin".
 */
const POLICY_PARAMETERS: ReadonlySet<string> = new Set([
  'policies',
  'token_policies',
  'allowed_policies',
  'disallowed_policies',
  'allowed_policies_glob',
  'disallowed_policies_glob',
  'identity_policies',
]);

function asHandled(name: string, value: unknown): unknown {
  if (!POLICY_PARAMETERS.has(name.toLowerCase())) return value;
  const policy = (v: unknown): unknown => (typeof v === 'string' ? v.trim().toLowerCase() : v);
  return Array.isArray(value) ? value.map(policy) : policy(value);
}

/** The policy's values for a parameter, as the request's are compared (policy names normalised, see above). */
const rulesFor = (rules: ParameterRules, name: string): unknown[] | undefined =>
  Object.hasOwn(rules, name) ? rules[name]!.map((el) => asHandled(name, el)) : undefined;

/**
 * Returns why the parameters are refused, or undefined when they pass. Order matters and follows Vault: required
 * parameters first, then (only if any parameters were sent) denied parameters, which win over allowed ones.
 * Reasons name parameters but never echo values, which may be secrets.
 */
export function checkParameters(c: ParameterConstraints, params: Record<string, unknown>): string | undefined {
  for (const required of c.requiredParameters) {
    if (!Object.hasOwn(params, required.toLowerCase())) return `missing required parameter "${required}"`;
  }
  const names = Object.keys(params);
  if (names.length === 0) return undefined;

  if (Object.keys(c.deniedParameters).length > 0) {
    if (Object.hasOwn(c.deniedParameters, '*')) return 'all parameters are denied on this path';
    for (const name of names) {
      const list = rulesFor(c.deniedParameters, name.toLowerCase());
      if (list && deniedValue(asHandled(name, params[name]), list)) return `parameter "${name}" is denied`;
    }
  }

  const allowedNames = Object.keys(c.allowedParameters);
  if (allowedNames.length === 0) return undefined;
  const allowAny = Object.hasOwn(c.allowedParameters, '*');
  if (allowAny && allowedNames.length === 1) return undefined;
  for (const name of names) {
    const list = rulesFor(c.allowedParameters, name.toLowerCase());
    if (list === undefined) {
      if (!allowAny) return `parameter "${name}" is not allowed`;
    } else if (!allowedValue(asHandled(name, params[name]), list)) {
      return `value of parameter "${name}" is not allowed`;
    }
  }
  return undefined;
}

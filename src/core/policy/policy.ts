/**
 * ACL policy documents: types and parsing/validation of Vault's policy syntax (HCL or JSON). Evaluation lives in
 * acl.ts. Parsing follows Vault's vault/policy.go so that any policy Vault accepts means the same thing here.
 */
import { durationSeconds } from '../duration.js';
import { badRequest, CofreError } from '../errors.js';
import { isObject, lineOfPathBlock, parseDocument } from './syntax.js';

export const CAPABILITIES = ['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** Parameter name (lower-cased) → permitted/forbidden values; an empty list means "any value". */
export type ParameterRules = Record<string, unknown[]>;

/** One `path "<pattern>" { ... }` block. */
export interface PathRules {
  /** The pattern as written minus a leading "/"; a trailing "*" (prefix glob) and "+" segments are kept. */
  path: string;
  /** Granted capabilities, deduplicated; exactly ["deny"] when the block denies (deny discards everything else). */
  capabilities: Capability[];
  /** Empty object = no constraint. */
  allowedParameters: ParameterRules;
  deniedParameters: ParameterRules;
  requiredParameters: string[];
  /** Bounds on the response-wrapping TTL a client may request, in seconds; 0 = unset. */
  minWrappingTTL: number;
  maxWrappingTTL: number;
}

export interface Policy {
  /** Lower-cased, as Vault normalises policy names. */
  name: string;
  /** The text as submitted; what `sys/policy/<name>` returns. */
  raw: string;
  paths: PathRules[];
}

// The pre-0.5 `policy = "..."` shorthand, expanded exactly as Vault does.
const LEGACY_POLICIES: Record<string, Capability[]> = {
  deny: ['deny'],
  read: ['read', 'list'],
  write: ['create', 'read', 'update', 'delete', 'list'],
  sudo: ['create', 'read', 'update', 'delete', 'list', 'sudo'],
};

const PATH_KEYS = new Set([
  'comment',
  'policy',
  'capabilities',
  'allowed_parameters',
  'denied_parameters',
  'required_parameters',
  'min_wrapping_ttl',
  'max_wrapping_ttl',
]);
const ENTERPRISE_KEYS = new Set(['mfa_methods', 'control_group']);

const isCapability = (c: string): c is Capability => (CAPABILITIES as readonly string[]).includes(c);

/** Vault trims and lower-cases policy names everywhere (store, token policies, ACL construction). */
export const normalizePolicyName = (name: string): string => name.trim().toLowerCase();

/** Parses a policy in Vault's HCL or JSON syntax; throws badRequest with a precise message on invalid input. */
export function parsePolicy(name: string, text: string): Policy {
  const policyName = normalizePolicyName(name);
  if (policyName === '') throw badRequest('policy name must not be empty');
  const doc = parseDocument(text);
  for (const key of Object.keys(doc)) {
    if (key !== 'name' && key !== 'path') {
      throw badRequest(
        `failed to parse policy: invalid key "${key}" (a policy contains only path "<path>" { ... } blocks)`,
      );
    }
  }
  const blocks = pathBlocks(doc.path);
  if (blocks.length === 0) {
    throw badRequest(
      'failed to parse policy: no paths (expected at least one path "<path>" { capabilities = [...] } block)',
    );
  }
  return { name: policyName, raw: text, paths: blocks.map(([path, body]) => parsePathRulesAt(text, path, body)) };
}

/** A block's rules; a mistake in them names the line its block starts on (an editor can point at it). */
function parsePathRulesAt(text: string, key: string, body: Record<string, unknown>): PathRules {
  try {
    return parsePathRules(key, body);
  } catch (err) {
    const line = err instanceof CofreError ? lineOfPathBlock(text, key) : undefined;
    if (line === undefined || !(err instanceof CofreError)) throw err;
    throw new CofreError(err.status, `${err.message} (the block on line ${line})`);
  }
}

/**
 * Flattens every way the path blocks can arrive: HCL (`{pattern: [body, ...]}`; repeated blocks become an array),
 * JSON (`{pattern: body}`), or HCL-JSON's list form (`[{pattern: body}, ...]`). The HCL converter sorts blocks by
 * pattern; that is harmless because merging rules for one pattern gives the same result in any order.
 */
function pathBlocks(value: unknown): [string, Record<string, unknown>][] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap((v) => pathBlocks(v));
  if (!isObject(value)) throw badRequest('failed to parse policy: "path" must be a block: path "<path>" { ... }');
  return Object.entries(value).flatMap(([path, body]) =>
    (Array.isArray(body) ? body : [body]).map((b): [string, Record<string, unknown>] => {
      if (!isObject(b)) throw badRequest(`failed to parse policy: path "${path}" must be a block { ... }`);
      return [path, b];
    }),
  );
}

function parsePathRules(key: string, body: Record<string, unknown>): PathRules {
  const fail = (message: string): never => {
    throw badRequest(`failed to parse policy: path "${key}": ${message}`);
  };
  for (const k of Object.keys(body)) {
    if (ENTERPRISE_KEYS.has(k)) fail(`"${k}" is a Vault Enterprise feature that Cofre does not support`);
    if (!PATH_KEYS.has(k)) fail(`invalid key "${k}" (valid keys: ${[...PATH_KEYS].join(', ')})`);
  }
  // Vault paths are relative to /v1/, so a leading "/" is just noise.
  const path = key.startsWith('/') ? key.slice(1) : key;
  if (path.includes('+*')) fail(`invalid use of wildcards ('+*' is forbidden)`);

  let requested = stringList(body.capabilities, 'capabilities', fail);
  if (body.policy !== undefined) {
    const legacy = typeof body.policy === 'string' ? LEGACY_POLICIES[body.policy] : undefined;
    if (!legacy) fail(`invalid policy ${JSON.stringify(body.policy)} (expected "deny", "read", "write" or "sudo")`);
    requested = body.policy === 'deny' ? ['deny'] : [...requested, ...(legacy ?? [])];
  }

  const rules: PathRules = {
    path,
    capabilities: [],
    allowedParameters: {},
    deniedParameters: {},
    requiredParameters: [],
    minWrappingTTL: 0,
    maxWrappingTTL: 0,
  };
  for (const cap of requested) {
    // As in Vault, deny short-circuits: nothing after it (capabilities or constraints) is looked at or kept.
    if (cap === 'deny') return { ...rules, capabilities: ['deny'] };
    if (!isCapability(cap)) {
      const hint = cap.startsWith('${') ? '; capabilities must be quoted strings' : '';
      throw badRequest(
        `failed to parse policy: unknown capability "${cap}" in path "${key}" (valid: ${CAPABILITIES.join(', ')})${hint}`,
      );
    }
    if (!rules.capabilities.includes(cap)) rules.capabilities.push(cap);
  }

  rules.allowedParameters = parameterRules(body.allowed_parameters, 'allowed_parameters', fail);
  rules.deniedParameters = parameterRules(body.denied_parameters, 'denied_parameters', fail);
  rules.requiredParameters = stringList(body.required_parameters, 'required_parameters', fail);
  for (const p of rules.requiredParameters) {
    if (p.includes('*')) fail(`required_parameters: parameter "${p}": wildcard is not permitted here`);
  }
  rules.minWrappingTTL = ttl(body.min_wrapping_ttl, 'min_wrapping_ttl', fail);
  rules.maxWrappingTTL = ttl(body.max_wrapping_ttl, 'max_wrapping_ttl', fail);
  if (rules.minWrappingTTL > 0 && rules.maxWrappingTTL > 0 && rules.maxWrappingTTL < rules.minWrappingTTL) {
    fail('max_wrapping_ttl cannot be less than min_wrapping_ttl');
  }
  return rules;
}

// Vault's HCL decoder turns a lone scalar into a one-element list, so `capabilities = "read"` is accepted there too.
const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

function stringList(v: unknown, what: string, fail: (m: string) => never): string[] {
  const list = asList(v);
  if (!list.every((s) => typeof s === 'string')) fail(`${what} must be a list of strings`);
  return list as string[];
}

function parameterRules(v: unknown, what: string, fail: (m: string) => never): ParameterRules {
  if (v === undefined || v === null) return {};
  // HCL block syntax (`allowed_parameters { a = [] }`) arrives as a list of objects: merge them.
  const objects = Array.isArray(v) ? v : [v];
  if (!objects.every(isObject)) fail(`${what} must be a map of parameter names to lists of values`);
  const entries = (objects as Record<string, unknown>[]).flatMap((o) => Object.entries(o));
  for (const [name] of entries) {
    if (name.includes('*') && name !== '*') fail(`${what}: parameter "${name}": "*" is only valid as the whole name`);
  }
  // Names are matched case-insensitively (request names are lower-cased at check time).
  return Object.fromEntries(entries.map(([name, values]) => [name.toLowerCase(), asList(values)]));
}

function ttl(v: unknown, what: string, fail: (m: string) => never): number {
  const seconds = parseDurationSeconds(v);
  return seconds ?? fail(`invalid ${what} ${JSON.stringify(v)} (use seconds or a duration such as "90s", "5m", "1h")`);
}

/**
 * Vault's parseutil.ParseDurationSecond, signed: a number or integer string is seconds, otherwise a duration as
 * src/core/duration.ts reads it ("1h30m", "1.5s", "2d"), with a leading "-" allowed. Undefined when the value is
 * not a duration.
 */
export function parseDurationSeconds(v: unknown): number | undefined {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (typeof v === 'string' && v.trim().startsWith('-')) {
    const magnitude = durationSeconds(v.trim().slice(1));
    return magnitude === undefined || v.trim() === '-' ? undefined : -magnitude;
  }
  return durationSeconds(v);
}

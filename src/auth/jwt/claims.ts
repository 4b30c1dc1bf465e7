import { setOwn } from '../../core/own-keys.js';
import { globMatches } from '../glob.js';

/** A claim value as bound claims compare it: strings, booleans and (whole) numbers. */
export type Scalar = string | number | boolean;

/**
 * A claim of a verified token by name, or by JSON pointer (RFC 6901) when the name starts with "/" (as Vault's
 * getClaim): "/groups/0", "/https:~1~1example.com~1tenant". Only own members are read, so a claim named
 * "constructor" or "__proto__" is just absent. Numbers become whole numbers, as Vault's do.
 */
export function getClaim(claims: Record<string, unknown>, name: string): unknown {
  let value: unknown;
  if (!name.startsWith('/')) {
    value = Object.hasOwn(claims, name) ? claims[name] : undefined;
  } else {
    value = claims;
    for (const raw of name.slice(1).split('/')) {
      const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (Array.isArray(value)) {
        if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
        value = value[Number(token)];
      } else if (value !== null && typeof value === 'object') {
        value = Object.hasOwn(value, token) ? (value as Record<string, unknown>)[token] : undefined;
      } else {
        return undefined;
      }
      if (value === undefined) return undefined;
    }
  }
  if (typeof value === 'number') return Math.trunc(value);
  return value ?? undefined;
}

/** A string, boolean or number as a list of one; a list as it is; anything else (an object, null) is not one. */
export function normalizeList(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return [value];
  return undefined;
}

function matchFound(expected: unknown[], actual: unknown[], globs: boolean): boolean {
  return expected.some((exp) =>
    actual.some((act) => {
      if (globs) return typeof exp === 'string' && typeof act === 'string' && globMatches(exp, act);
      return (typeof act === 'string' || typeof act === 'number' || typeof act === 'boolean') && act === exp;
    }),
  );
}

/**
 * Every bound claim must be present and one of its values must match one of the token's (a list claim matches
 * when any member does). Returns what failed, naming the claim but never its value; undefined when all hold.
 */
export function boundClaimsFailure(
  bound: Record<string, unknown>,
  claims: Record<string, unknown>,
  globs: boolean,
): string | undefined {
  for (const [name, expectedRaw] of Object.entries(bound)) {
    const actualRaw = getClaim(claims, name);
    if (actualRaw === undefined) return `claim ${JSON.stringify(name)} is missing`;
    const actual = normalizeList(actualRaw)?.map((v) => (typeof v === 'number' ? Math.trunc(v) : v));
    if (!actual) return `claim ${JSON.stringify(name)} is not a string, bool, number or list`;
    const expected = normalizeList(expectedRaw) ?? [];
    if (!matchFound(expected, actual, globs)) {
      return `claim ${JSON.stringify(name)} does not match any associated bound claim values`;
    }
  }
  return undefined;
}

/** Token metadata from claim_mappings (claim → metadata key); a mapped claim that is present must be a string. */
export function mappedMetadata(
  mappings: Record<string, string>,
  claims: Record<string, unknown>,
): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [claim, key] of Object.entries(mappings)) {
    const value = getClaim(claims, claim);
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new Error(`error converting claim ${JSON.stringify(claim)} to string`);
    setOwn(metadata, key, value);
  }
  return metadata;
}

/** Checks a bound_claims map from a role write; returns why it is refused, or undefined. */
export function boundClaimsProblem(bound: Record<string, unknown>, globs: boolean): string | undefined {
  for (const [name, raw] of Object.entries(bound)) {
    const values = normalizeList(raw);
    if (!values || values.length === 0) {
      return `bound claim ${JSON.stringify(name)} must be a string, bool, number or a non-empty list of them`;
    }
    for (const v of values) {
      if (globs && typeof v !== 'string') return `bound claim ${JSON.stringify(name)}: glob values must be strings`;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        return `bound claim ${JSON.stringify(name)}: values must be strings, bools or numbers`;
      }
    }
  }
  return undefined;
}

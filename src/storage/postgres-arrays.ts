/**
 * PostgreSQL array literals for the batch function's parameters (postgres-sql.ts casts each to its array type).
 * Written here rather than by pg, which quotes every element, integers included, and runs two regular expressions
 * over each (escapeElement): for a batch of 15 KV writes (45 ops) 50-60 µs against 18-25 µs here, measured alone;
 * about 1 % of a node's CPU per write. The text literal is what pg would send for the text arrays.
 */

/** `{1,2,3}`. Only for integers this code made (positions, lengths, callers): no text to escape. */
export function intArray(values: readonly number[]): string {
  return `{${values.join(',')}}`;
}

/** `{t,f}`. */
export function boolArray(values: readonly boolean[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) out += (i === 0 ? '' : ',') + (values[i] ? 't' : 'f');
  return `${out}}`;
}

/**
 * `{"a","b\"c"}`: every element quoted, so that none reads as NULL or splits at a comma, brace or space; inside
 * quotes only a double quote and a backslash are special, each escaped with a backslash.
 */
export function textArray(values: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    const quoted = SPECIAL.test(value) ? value.replace(SPECIALS, '\\$&') : value;
    out += `${i === 0 ? '' : ','}"${quoted}"`;
  }
  return `${out}}`;
}

const SPECIAL = /["\\]/;
const SPECIALS = /["\\]/g;

/**
 * Policy text → plain object. Vault accepts policies in HCL or in JSON; both end up as the same shape
 * (`{ path: { "<pattern>": body | body[] } }`), which policy.ts then validates.
 */
import { createRequire } from 'node:module';
import { badRequest } from '../errors.js';

type HclParser = typeof import('hcl2-parser');

// hcl2-parser is a ~4 MB GopherJS bundle that takes ~0.4 s to load, so it is loaded on first use rather than at
// import time: commands and tests that never parse HCL don't pay for it.
let hclParser: HclParser | undefined;
const loadHcl = (): HclParser => (hclParser ??= createRequire(import.meta.url)('hcl2-parser') as HclParser);

// Each HCL parse through the GopherJS bundle costs tens of milliseconds, and the same texts (stored policies, the
// default policy) are parsed over and over, so successful HCL parses are memoised by text (copies are handed out).
const parsed = new Map<string, Record<string, unknown>>();
const PARSED_LIMIT = 512;

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses policy text as JSON (when it starts with "{", which HCL can't) or HCL; throws badRequest on bad syntax. */
export function parseDocument(text: string): Record<string, unknown> {
  if (text.trimStart().startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw badRequest(`failed to parse policy: invalid JSON: ${(err as Error).message}`);
    }
    if (!isObject(doc)) throw badRequest('failed to parse policy: JSON policy must be an object');
    return doc;
  }
  const hit = parsed.get(text);
  if (hit) return structuredClone(hit);
  let result: unknown;
  try {
    result = loadHcl().parseToObject(text);
  } catch {
    result = undefined; // the GopherJS runtime can throw instead of returning an error; treat both alike
  }
  // parseToObject returns [object, error]; the Go error comes back as an opaque {} without its message.
  const [doc, err] = Array.isArray(result) ? (result as unknown[]) : [undefined, true];
  if (err || !isObject(doc)) throw badRequest(`failed to parse policy: ${describeHclError(text)}`);
  if (parsed.size >= PARSED_LIMIT) parsed.delete(parsed.keys().next().value ?? ''); // drop the oldest
  parsed.set(text, structuredClone(doc));
  return doc;
}

/**
 * The line a `path "<pattern>" {` block starts on in HCL text (the first, when a pattern repeats), so a mistake
 * found after parsing can still be pointed at; undefined for JSON policies or when the pattern is not found.
 */
export function lineOfPathBlock(text: string, pattern: string): number | undefined {
  if (text.trimStart().startsWith('{')) return undefined;
  const quoted = JSON.stringify(pattern).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^[ \\t]*path[ \\t]+${quoted}`, 'm').exec(text);
  return match ? text.slice(0, match.index).split('\n').length : undefined;
}

const CLOSERS: Record<string, string> = { '}': '{', ']': '[', ')': '(' };

/**
 * Since the parser loses its diagnostics, find the most common mistakes ourselves (unbalanced brackets, unterminated
 * strings or comments) so the user gets a line number; otherwise explain the HCL2 rules that trip up Vault users.
 */
export function describeHclError(text: string): string {
  const open: { ch: string; line: number }[] = [];
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '\n') {
      line++;
    } else if (c === '#' || (c === '/' && text.charAt(i + 1) === '/')) {
      while (i + 1 < text.length && text.charAt(i + 1) !== '\n') i++;
    } else if (c === '/' && text.charAt(i + 1) === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return `syntax error: comment opened on line ${line} is never closed`;
      line += text.slice(i, end).split('\n').length - 1;
      i = end + 1;
    } else if (c === '"') {
      for (i++; text.charAt(i) !== '"'; i++) {
        if (i >= text.length || text.charAt(i) === '\n') return `syntax error: unterminated string on line ${line}`;
        if (text.charAt(i) === '\\') i++;
      }
    } else if (c === '{' || c === '[' || c === '(') {
      open.push({ ch: c, line });
    } else if (c in CLOSERS) {
      const top = open.pop();
      if (top?.ch !== CLOSERS[c]) return `syntax error: unexpected "${c}" on line ${line}`;
    }
  }
  const unclosed = open.pop();
  if (unclosed) return `syntax error: "${unclosed.ch}" opened on line ${unclosed.line} is never closed`;
  return (
    'invalid HCL syntax: expected blocks like path "secret/*" { capabilities = ["read"] }, with quoted strings ' +
    'and, when a block has more than one attribute, each attribute on its own line'
  );
}

/**
 * Password policies, as Vault has them (sys/policies/password): a length and `charset` rules, written in HCL or
 * JSON. Engines that create credentials (the database engine) draw their passwords from a named policy or, when
 * none is configured, from DEFAULT_PASSWORD_POLICY.
 */
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { badRequest } from './errors.js';
import { describeHclError, isObject } from './policy/syntax.js';
import type { Storage } from './storage.js';
import { getJson, putJson } from './storage-view.js';

export interface PasswordRule {
  /** The rule's characters, each once, in the order written. */
  charset: string;
  /** How many characters of the password must come from this charset. */
  minChars: number;
}

export interface PasswordPolicy {
  /** In characters (Unicode code points), not UTF-16 units: a charset may hold characters outside the BMP. */
  length: number;
  rules: PasswordRule[];
}

/** Vault's limits (sys/policies/password and sdk/helper/random). */
export const MIN_PASSWORD_LENGTH = 4;
export const MAX_PASSWORD_LENGTH = 100;
export const MAX_CHARSET_LENGTH = 256;

const LOWERCASE = 'abcdefghijklmnopqrstuvwxyz';
const UPPERCASE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGITS = '0123456789';

/** The policy Vault applies when an engine has no password_policy set: 20 characters, one of each class at least. */
export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = Object.freeze({
  length: 20,
  rules: Object.freeze(
    [LOWERCASE, UPPERCASE, DIGITS, '-'].map((charset) => Object.freeze({ charset, minChars: 1 })),
  ) as PasswordRule[],
});

const invalid = (message: string) => badRequest(`invalid password policy: ${message}`);

type HclParser = typeof import('hcl2-parser');
// Loaded on first use for the same reason as in policy/syntax.ts: the GopherJS bundle is large and slow to load.
let hclParser: HclParser | undefined;
const loadHcl = (): HclParser => (hclParser ??= createRequire(import.meta.url)('hcl2-parser') as HclParser);

/**
 * Vault reads password policies with HCL 1, the parser here is HCL 2. Two differences matter for policies people
 * already have: HCL 1 allows commas between a block's attributes (`{ charset = "abc", min-chars = 1 }`), and it
 * takes "${" and "%{" in strings literally where HCL 2 starts a template. Both are rewritten here: braces and commas
 * outside strings and comments become line breaks, and template openers inside strings and heredocs are escaped.
 */
function hcl1ToHcl2(text: string): string {
  let out = '';
  const brackets: string[] = [];
  let i = 0;
  const escapeTemplates = (s: string) => s.replace(/([$%])\{/g, '$1$1{');
  while (i < text.length) {
    const c = text.charAt(i);
    const next = text.charAt(i + 1);
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text.charAt(j) !== '"' && text.charAt(j) !== '\n') j += text.charAt(j) === '\\' ? 2 : 1;
      out += escapeTemplates(text.slice(i, j + 1));
      i = j + 1;
    } else if (c === '#' || (c === '/' && next === '/')) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === '<' && next === '<') {
      const heredoc = /^<<-?([A-Za-z_][A-Za-z0-9_-]*)\r?\n/.exec(text.slice(i));
      if (!heredoc) {
        out += c;
        i++;
        continue;
      }
      const closing = new RegExp(`\\n[ \\t]*${heredoc[1]}[ \\t]*(?=\\r?\\n|$)`).exec(text.slice(i));
      const stop = closing ? i + closing.index + closing[0].length : text.length;
      out += escapeTemplates(text.slice(i, stop));
      i = stop;
    } else {
      // HCL 2 wants a block's attributes on lines of their own, apart from its braces too.
      if (c === '{' || c === '[') brackets.push(c);
      else if (c === '}' || c === ']') brackets.pop();
      if (c === '{') out += '{\n';
      else if (c === '}') out += '\n}';
      else out += c === ',' && brackets.at(-1) === '{' ? '\n' : c;
      i++;
    }
  }
  return out;
}

function parseDocument(text: string): Record<string, unknown> {
  if (text.trim() === '') throw invalid('the policy is empty');
  if (text.trimStart().startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw invalid(`invalid JSON: ${(err as Error).message}`);
    }
    if (!isObject(doc)) throw invalid('a JSON policy must be an object');
    return doc;
  }
  let result: unknown;
  try {
    result = loadHcl().parseToObject(hcl1ToHcl2(text));
  } catch {
    result = undefined; // the GopherJS runtime can throw instead of returning an error
  }
  const [doc, err] = Array.isArray(result) ? (result as unknown[]) : [undefined, true];
  if (!err && isObject(doc)) return doc;
  const diagnosis = describeHclError(text);
  throw invalid(
    diagnosis.startsWith('syntax error')
      ? diagnosis
      : 'invalid HCL syntax: expected length = <number> and blocks like rule "charset" { charset = "abc" }',
  );
}

/**
 * The rules of a document, whatever nesting it came in: HCL gives `{ charset: [body, …] }`, Vault's own JSON form
 * is `[{ charset: [body] }, …]`, and hand-written JSON often drops one of the arrays.
 */
function ruleEntries(raw: unknown): { type: string; body: unknown }[] {
  if (raw === undefined) return [];
  if (Array.isArray(raw)) return raw.flatMap((item) => ruleEntries(item));
  if (!isObject(raw)) throw invalid('"rule" must be a block such as rule "charset" { charset = "abc" }');
  return Object.entries(raw).flatMap(([type, bodies]) =>
    (Array.isArray(bodies) ? bodies : [bodies]).map((body: unknown) => ({ type, body })),
  );
}

/** Unique code points in first-seen order: a repeated character would otherwise be drawn more often. */
const uniqueChars = (s: string): string[] => [...new Set(Array.from(s))];

// Go's unicode.IsPrint, which Vault applies: letters, marks, numbers, punctuation, symbols and the ASCII space.
// Other spaces, controls, format characters and lone surrogates are refused.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

function parseCharsetRule(body: unknown, index: number): PasswordRule {
  const where = `rule "charset" #${index + 1}`;
  if (!isObject(body)) throw invalid(`${where} must be a block such as rule "charset" { charset = "abc" }`);
  for (const key of Object.keys(body)) {
    if (key !== 'charset' && key !== 'min-chars') {
      throw invalid(`${where}: unknown attribute "${key}" (expected "charset" and optionally "min-chars")`);
    }
  }
  const { charset } = body;
  const minChars = body['min-chars'] ?? 0;
  if (typeof charset !== 'string') throw invalid(`${where}: "charset" is required and must be a string`);
  if (charset === '') throw invalid(`${where}: "charset" is empty`);
  for (const ch of charset) {
    if (/\p{Cs}/u.test(ch)) throw invalid(`${where}: "charset" is not valid UTF-8 (lone surrogate)`);
    if (!PRINTABLE.test(ch)) {
      const code = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      throw invalid(`${where}: "charset" holds a non-printable character (${code})`);
    }
  }
  if (typeof minChars !== 'number' || !Number.isSafeInteger(minChars) || minChars < 0) {
    throw invalid(`${where}: "min-chars" must be a whole number >= 0`);
  }
  return { charset: uniqueChars(charset).join(''), minChars };
}

/** Checks what must hold of any policy, parsed or built by hand, for generation to be possible and fair. */
function checkPolicy(policy: PasswordPolicy): { union: string[]; charsets: string[][] } {
  const { length, rules } = policy;
  if (!Number.isSafeInteger(length) || length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw invalid(
      `"length" must be a whole number between ${MIN_PASSWORD_LENGTH} and ${MAX_PASSWORD_LENGTH} characters`,
    );
  }
  if (rules.length === 0) throw invalid('at least one rule "charset" is needed: there are no characters to draw from');
  const charsets = rules.map((rule) => uniqueChars(rule.charset));
  if (charsets.some((chars) => chars.length === 0)) throw invalid('a rule "charset" has an empty charset');
  const union = [...new Set(charsets.flat())];
  if (union.length > MAX_CHARSET_LENGTH) {
    throw invalid(`the rules' charsets together hold ${union.length} characters; at most ${MAX_CHARSET_LENGTH}`);
  }
  const required = rules.reduce((sum, rule) => sum + rule.minChars, 0);
  if (required > length) {
    throw invalid(`the rules require at least ${required} characters but "length" is ${length}`);
  }
  return { union, charsets };
}

/** Parses a password policy in HCL or JSON; throws badRequest saying what is wrong. */
export function parsePasswordPolicy(text: string): PasswordPolicy {
  const doc = parseDocument(text);
  for (const key of Object.keys(doc)) {
    if (key !== 'length' && key !== 'rule') {
      throw invalid(`unknown setting "${key}" (a policy has "length" and "rule" blocks)`);
    }
  }
  if (doc.length === undefined) throw invalid('"length" is required');
  if (typeof doc.length !== 'number') throw invalid('"length" must be a number');
  const entries = ruleEntries(doc.rule);
  const rules = entries.map(({ type, body }, i) => {
    if (type !== 'charset') throw invalid(`unrecognized rule type "${type}" (the only rule type is "charset")`);
    return parseCharsetRule(body, i);
  });
  const policy = { length: doc.length, rules };
  checkPolicy(policy);
  return policy;
}

/** Whether a password meets the policy: its length and every rule's minimum. */
export function satisfiesPolicy(policy: PasswordPolicy, password: string): boolean {
  const chars = Array.from(password);
  if (chars.length !== policy.length) return false;
  const union = new Set(policy.rules.flatMap((rule) => Array.from(rule.charset)));
  if (!chars.every((ch) => union.has(ch))) return false;
  return policy.rules.every((rule) => {
    const set = new Set(Array.from(rule.charset));
    return chars.filter((ch) => set.has(ch)).length >= rule.minChars;
  });
}

/**
 * A password from the policy: each rule's min-chars drawn from its own charset, the rest from the union of all
 * charsets, then shuffled so the required characters sit anywhere. Unlike Vault's draw-and-retry, this never fails
 * or times out for a valid policy, however tight. randomInt rejects out-of-range draws, so no character is favoured
 * by a modulo.
 */
export function generatePassword(policy: PasswordPolicy): string {
  const { union, charsets } = checkPolicy(policy);
  const pick = (chars: string[]) => chars[randomInt(chars.length)]!;
  const out: string[] = [];
  policy.rules.forEach((rule, i) => {
    for (let n = 0; n < rule.minChars; n++) out.push(pick(charsets[i]!));
  });
  while (out.length < policy.length) out.push(pick(union));
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out.join('');
}

interface StoredPasswordPolicy {
  policy: string;
}

// Vault's framework.GenericNameRegex, which its password-policy paths use.
const NAME = /^\w(?:[\w.-]*\w)?$/;

/**
 * Password policies on their own barrier view, stored as Vault stores them ({"policy": "<text>"}). Parsed policies
 * are memoised by text rather than by name, so a policy changed by another node is never served stale, while the
 * slow HCL parse is still paid once per text.
 */
export class PasswordPolicyStore {
  private readonly parsed = new Map<string, PasswordPolicy>();
  private static readonly PARSED_LIMIT = 256;

  constructor(private readonly storage: Storage) {}

  private static key(name: string): string {
    if (!NAME.test(name)) {
      throw badRequest(
        `invalid password policy name "${name}": use letters, digits, "_", "-" and ".", starting and ending with a letter or digit`,
      );
    }
    return name;
  }

  /** Validates the policy and draws one password from it before storing anything, as Vault does. */
  async write(name: string, text: string): Promise<void> {
    const key = PasswordPolicyStore.key(name);
    const policy = parsePasswordPolicy(text);
    if (!satisfiesPolicy(policy, generatePassword(policy))) {
      throw invalid('a password generated from the policy did not meet its rules');
    }
    await putJson(this.storage, key, { policy: text } satisfies StoredPasswordPolicy);
    this.remember(text, policy);
  }

  async read(name: string): Promise<{ name: string; policy: string } | undefined> {
    const stored = await getJson<StoredPasswordPolicy>(this.storage, PasswordPolicyStore.key(name));
    return stored ? { name, policy: stored.policy } : undefined;
  }

  /** Deleting a missing policy is not an error, as in Vault. Engines that name it fail at their next generation. */
  async delete(name: string): Promise<void> {
    await this.storage.delete(PasswordPolicyStore.key(name));
  }

  async list(): Promise<string[]> {
    return (await this.storage.list('')).sort();
  }

  /** The parsed policy of that name, or undefined. */
  async policy(name: string): Promise<PasswordPolicy | undefined> {
    const stored = await this.read(name);
    if (!stored) return undefined;
    const hit = this.parsed.get(stored.policy);
    if (hit) return hit;
    const policy = parsePasswordPolicy(stored.policy);
    this.remember(stored.policy, policy);
    return policy;
  }

  /** A password from the named policy; without a name (or with ""), from Vault's default policy. */
  async generate(name?: string): Promise<string> {
    if (!name) return generatePassword(DEFAULT_PASSWORD_POLICY);
    const policy = await this.policy(name);
    if (!policy) throw badRequest(`password policy "${name}" does not exist`);
    return generatePassword(policy);
  }

  private remember(text: string, policy: PasswordPolicy): void {
    if (this.parsed.size >= PasswordPolicyStore.PARSED_LIMIT) this.parsed.delete(this.parsed.keys().next().value ?? '');
    // Frozen because every caller of policy() shares the memoised object.
    policy.rules.forEach((rule) => Object.freeze(rule));
    Object.freeze(policy.rules);
    this.parsed.set(text, Object.freeze(policy));
  }
}

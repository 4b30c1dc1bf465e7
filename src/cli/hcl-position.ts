/**
 * Where HCL text goes wrong, for config errors that name a line and column.
 *
 * hcl2-parser (HCL 2 compiled to JavaScript with GopherJS) reports a failure as an opaque `{}`: its diagnostics,
 * positions and messages included, do not survive the trip to JavaScript. So the position is found here, in two
 * steps. First a small scanner finds the mistakes that break the structure (an unterminated string, comment or
 * heredoc; an unbalanced bracket) and where they start. With the structure sound, the real parser is asked about
 * one attribute or block at a time, descending into the innermost one it refuses; that item's position, and what
 * in it looks wrong, is the answer.
 */

/** Whether the real parser accepts a text. */
export type Parses = (text: string) => boolean;

export interface HclProblem {
  line: number;
  column: number;
  message: string;
}

type Kind = 'ident' | 'string' | 'heredoc' | 'number' | 'newline' | 'open' | 'close' | 'equals' | 'other';

interface Token {
  kind: Kind;
  start: number;
  end: number;
}

/** A problem found at an offset of the text (turned into a line and column at the end). */
class Found {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

/** What the scanner is inside of: a bracket, a quoted string, or a `${ }` / `%{ }` template in a string. */
interface Context {
  kind: 'bracket' | 'string' | 'template';
  start: number;
  char: string;
}

const CLOSING: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
const TWO_CHAR_OPERATORS = new Set(['==', '!=', '<=', '>=', '=>', '&&', '||']);

/** Tokens of the text, or the first structural mistake in it. */
function scan(text: string): Token[] | Found {
  const tokens: Token[] = [];
  const stack: Context[] = [];
  // Tokens inside a template (`"${ a }"`) belong to the string around them: not emitted.
  let templates = 0;
  const emit = (kind: Kind, start: number, end: number): void => {
    if (templates === 0) tokens.push({ kind, start, end });
  };
  const where = (c: Context): string => lineColumn(text, c.start);
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    const top = stack.at(-1);
    if (top?.kind === 'string') {
      if (c === '\\') i += 2;
      else if (c === '"') {
        stack.pop();
        emit('string', top.start, ++i);
      } else if (c === '\n') {
        return new Found(top.start, 'unterminated string: the " opened here is not closed on its line');
      } else if ((c === '$' || c === '%') && text.charAt(i + 1) === c && text.charAt(i + 2) === '{') {
        i += 3; // "$${" and "%%{" are literal text
      } else if ((c === '$' || c === '%') && text.charAt(i + 1) === '{') {
        stack.push({ kind: 'template', start: i, char: `${c}{` });
        templates++;
        i += 2;
      } else i++;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (c === '\n') emit('newline', i, ++i);
    else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '#' || two === '//') {
      while (i < text.length && text.charAt(i) !== '\n') i++;
    } else if (two === '/*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return new Found(i, 'unterminated comment: the /* opened here has no closing */');
      i = end + 2;
    } else if (c === '"') {
      stack.push({ kind: 'string', start: i, char: c });
      i++;
    } else if (two === '<<') {
      const heredoc = /<<-?([A-Za-z_][\w-]*)\r?\n/y;
      heredoc.lastIndex = i;
      const marker = heredoc.exec(text)?.[1];
      if (!marker) {
        emit('other', i, (i += 2));
        continue;
      }
      const close = new RegExp(`^[ \\t]*${marker}[ \\t]*\\r?$`, 'm');
      const body = text.slice(heredoc.lastIndex);
      const found = close.exec(body);
      if (!found) return new Found(i, `unterminated heredoc: no line with ${marker} alone ends the <<${marker} here`);
      const end = heredoc.lastIndex + found.index + found[0].length;
      emit('heredoc', i, end);
      i = end;
    } else if (c === '{' || c === '[' || c === '(') {
      stack.push({ kind: 'bracket', start: i, char: c });
      emit('open', i, ++i);
    } else if (c === '}' || c === ']' || c === ')') {
      if (top?.kind === 'template' && c === '}') {
        stack.pop();
        templates--;
        i++;
        continue;
      }
      if (!top) return new Found(i, `unexpected "${c}": nothing open here to close`);
      const expected = top.kind === 'template' ? '}' : (CLOSING[top.char] ?? '');
      if (c !== expected) {
        return new Found(i, `unexpected "${c}": the "${top.char}" opened at ${where(top)} needs a "${expected}" first`);
      }
      stack.pop();
      emit('close', i, ++i);
    } else if (TWO_CHAR_OPERATORS.has(two)) {
      emit('other', i, (i += 2));
    } else if (c === '=') {
      emit('equals', i, ++i);
    } else {
      const word = /[A-Za-z_][\w-]*|\d[\w.]*/y;
      word.lastIndex = i;
      const m = word.exec(text);
      if (m) emit(/\d/.test(c) ? 'number' : 'ident', i, (i += m[0].length));
      else emit('other', i, ++i);
    }
  }
  const unclosed = stack.at(-1);
  if (!unclosed) return tokens;
  if (unclosed.kind === 'string') {
    return new Found(unclosed.start, 'unterminated string: the " opened here is never closed');
  }
  const closer = unclosed.kind === 'template' ? '}' : CLOSING[unclosed.char];
  return new Found(
    unclosed.start,
    `the "${unclosed.char}" opened here is never closed (no "${closer}" before the end of the file)`,
  );
}

/** An attribute or block: a run of tokens from a line start to the newline outside any bracket. */
interface Item {
  first: number;
  last: number;
}

/** The items among tokens[from, to). */
function splitItems(tokens: Token[], from: number, to: number): Item[] {
  const items: Item[] = [];
  let depth = 0;
  let first = -1;
  for (let k = from; k < to; k++) {
    const kind = tokens[k]!.kind;
    if (kind === 'open') depth++;
    else if (kind === 'close') depth--;
    if (kind === 'newline' && depth === 0) {
      if (first >= 0) items.push({ first, last: k - 1 });
      first = -1;
    } else if (first < 0 && kind !== 'newline') first = k;
  }
  if (first >= 0) items.push({ first, last: to - 1 });
  return items;
}

/** The index of the token closing the bracket opened at tokens[open]. */
function matching(tokens: Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    if (tokens[k]!.kind === 'open') depth++;
    else if (tokens[k]!.kind === 'close' && --depth === 0) return k;
  }
  return tokens.length - 1;
}

/** The index of a block's opening brace (after its name and labels), or -1 when the item is not a block. */
function blockBrace(text: string, tokens: Token[], item: Item): number {
  if (tokens[item.first]!.kind !== 'ident') return -1;
  for (let k = item.first + 1; k <= item.last; k++) {
    const t = tokens[k]!;
    if (t.kind === 'open') return text.charAt(t.start) === '{' ? k : -1;
    if (t.kind !== 'ident' && t.kind !== 'string') return -1;
  }
  return -1;
}

/** Why the real parser refuses an item that parses on its own in no way, descending into blocks. */
function explainItem(text: string, tokens: Token[], item: Item, parses: Parses): Found {
  const brace = blockBrace(text, tokens, item);
  const head = tokens[item.first]!;
  const name = text.slice(head.start, head.end);
  if (brace >= 0) {
    const close = matching(tokens, brace);
    const inner = findInItems(text, tokens, splitItems(tokens, brace + 1, close), parses);
    if (inner) return inner;
    if (close < item.last) {
      return new Found(tokens[close + 1]!.start, `unexpected text after the closing "}" of block "${name}"`);
    }
    return new Found(
      tokens[brace]!.start,
      `block "${name}" is not laid out as HCL wants: its "{" ends the header line, each attribute is on a line ` +
        'of its own, and its "}" is on a line of its own (only a block with one attribute may be on one line)',
    );
  }
  const equals = tokens[item.first + 1];
  if (head.kind !== 'ident' || equals?.kind !== 'equals') {
    return new Found(head.start, 'expected an attribute (name = value) or a block (name "label" { ... })');
  }
  const value = tokens[item.first + 2];
  if (item.first + 2 > item.last || !value) return new Found(equals.end, `attribute "${name}" has no value`);
  return new Found(
    value.start,
    `invalid value for "${name}" (strings are quoted: ${name} = "...", lists are [ ... ], numbers and true/false unquoted)`,
  );
}

/** The first item the parser refuses, alone or after the ones before it (a name defined twice). */
function findInItems(text: string, tokens: Token[], items: Item[], parses: Parses): Found | undefined {
  const slice = (from: Item, to: Item): string => text.slice(tokens[from.first]!.start, tokens[to.last]!.end);
  for (const item of items) {
    if (!parses(slice(item, item))) return explainItem(text, tokens, item, parses);
  }
  const start = items[0];
  for (const [k, item] of items.entries()) {
    if (k > 0 && start && !parses(slice(start, item))) {
      const head = tokens[item.first]!;
      const name = text.slice(head.start, head.end);
      return new Found(head.start, `"${name}" here conflicts with what comes before it (is it defined twice?)`);
    }
  }
  return undefined;
}

/** "line:column" of an offset, both from 1. */
function lineColumn(text: string, offset: number): string {
  const { line, column } = position(text, offset);
  return `${line}:${column}`;
}

/** The line and column (both from 1) of an offset in the text. */
export function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

/** Where the real parser's refusal of `text` comes from, or undefined when it cannot be pinned down. */
export function locateHclError(text: string, parses: Parses): HclProblem | undefined {
  const scanned = scan(text);
  const found =
    scanned instanceof Found ? scanned : findInItems(text, scanned, splitItems(scanned, 0, scanned.length), parses);
  return found && { ...position(text, found.offset), message: found.message };
}

/**
 * A config line as an error may show it: the values after its first "=" (or JSON's `":`) masked character for character (a config
 * holds passwords and connection URLs, and an error goes to logs), keeping quotes, brackets, commas and the width,
 * so the caret still points at the same column.
 */
export function maskValues(source: string): string {
  // HCL's `name = value`, or JSON's `"name": value`.
  const eq = source.indexOf('=');
  const colon = source.indexOf('":');
  const at = eq >= 0 ? eq + 1 : colon >= 0 ? colon + 2 : -1;
  if (at < 0) return source;
  return source.slice(0, at) + source.slice(at).replace(/[^\s"'{}[\],=]/g, '*');
}

/** The line of the problem (its values masked) with a caret under its column, to print under the message. */
export function pointAt(text: string, line: number, column: number): string {
  const source = maskValues((text.split('\n')[line - 1] ?? '').replace(/\r$/, ''));
  const gutter = `${line} | `;
  // Tabs before the column stay tabs, so the caret lines up however the terminal shows them.
  const pad = source.slice(0, column - 1).replace(/[^\t]/g, ' ');
  return `  ${gutter}${source}\n  ${' '.repeat(gutter.length - 2)}| ${pad}^`;
}

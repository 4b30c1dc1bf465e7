/**
 * Vault's username_template: Go text/template with the functions of Vault's sdk/helper/template, limited to what
 * username templates use — text, {{ pipelines }} of fields (.RoleName, .DisplayName), literals, function calls,
 * parentheses and '|', trim markers and comments. Control structures and variables are refused with an Error.
 */
import { createHash, randomInt, randomUUID } from 'node:crypto';

export interface UsernameMetadata {
  roleName: string;
  displayName: string;
}

/**
 * Characters of a caller's display name that reach a username: the rest become "_". The display name is partly the
 * caller's own choice (a JWT login's user claim), and the creation statements put the username into SQL as text
 * ('{{name}}', "{{name}}"): a quote in it ended the literal, and "a'#" made MySQL create a user with no password.
 */
const SAFE_IN_USERNAME = /[^A-Za-z0-9_.@-]/g;

/** Renders `template`; throws an Error whose message suits a 400 when it cannot, or when the name is too long. */
export function renderUsername(template: string, meta: UsernameMetadata, maxLength: number): string {
  const name = render(template, { ...meta, displayName: meta.displayName.replace(SAFE_IN_USERNAME, '_') });
  if (name.length === 0) throw new Error('username_template produced an empty username');
  if (name.length > maxLength)
    throw new Error(
      `username_template produced a username of ${name.length} characters; this database accepts at most ` +
        `${maxLength} (shorten it, e.g. with "| truncate ${maxLength}")`,
    );
  return name;
}

type Value = string | number;
type Node =
  | { kind: 'field'; name: string }
  | { kind: 'literal'; value: Value }
  | { kind: 'ident'; name: string }
  | { kind: 'pipeline'; commands: Node[][] };

function fail(why: string): never {
  throw new Error(`invalid username_template: ${why}`);
}

function render(template: string, meta: UsernameMetadata): string {
  let out = '';
  let at = 0;
  while (at < template.length) {
    const open = template.indexOf('{{', at);
    if (open < 0) {
      out += template.slice(at);
      break;
    }
    let text = template.slice(at, open);
    let start = open + 2;
    if (/^- /.test(template.slice(start))) {
      text = text.trimEnd();
      start += 1;
    }
    out += text;
    const { tokens, end, trimAfter } = lexAction(template, start);
    at = end;
    if (trimAfter) while (at < template.length && /\s/.test(template[at] ?? '')) at++;
    if (tokens.length === 1 && tokens[0]?.startsWith('/*')) continue; // a comment
    const parser = { tokens, i: 0 };
    const pipeline = parsePipeline(parser);
    if (parser.i < tokens.length) fail(`unexpected "${tokens[parser.i]}"`);
    out += String(evaluate(pipeline, meta));
  }
  return out;
}

/** The tokens of one action, which starts at `from` (after "{{") and ends with "}}" outside a string. */
function lexAction(src: string, from: number): { tokens: string[]; end: number; trimAfter: boolean } {
  const tokens: string[] = [];
  let i = from;
  for (;;) {
    while (/\s/.test(src[i] ?? '') && !src.startsWith('-}}', i)) i++;
    if (i >= src.length) fail('unclosed action (missing "}}")');
    if (src.startsWith('}}', i)) return { tokens, end: i + 2, trimAfter: false };
    if (src.startsWith('-}}', i) && /\s/.test(src[i - 1] ?? '')) return { tokens, end: i + 3, trimAfter: true };
    const rest = src.slice(i);
    const m =
      /^\/\*[\s\S]*?\*\//.exec(rest) ??
      /^"(?:[^"\\\n]|\\.)*"/.exec(rest) ??
      /^`[^`]*`/.exec(rest) ??
      /^-?\d+/.exec(rest) ??
      /^\.?[A-Za-z_][A-Za-z0-9_]*/.exec(rest) ??
      /^[|()]/.exec(rest);
    if (!m) fail(`unsupported syntax at "${rest.slice(0, 12)}"`);
    tokens.push(m[0]);
    i += m[0].length;
  }
}

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

function parsePipeline(p: { tokens: string[]; i: number }): Node {
  const commands: Node[][] = [];
  for (;;) {
    const command: Node[] = [];
    while (p.i < p.tokens.length && p.tokens[p.i] !== '|' && p.tokens[p.i] !== ')') command.push(parseOperand(p));
    if (command.length === 0) fail('missing value in pipeline');
    commands.push(command);
    if (p.tokens[p.i] !== '|') return { kind: 'pipeline', commands };
    p.i++;
  }
}

function parseOperand(p: { tokens: string[]; i: number }): Node {
  const t = p.tokens[p.i++] ?? '';
  if (t === '(') {
    const inner = parsePipeline(p);
    if (p.tokens[p.i++] !== ')') fail('unclosed "("');
    return inner;
  }
  if (t.startsWith('.')) return { kind: 'field', name: t.slice(1) };
  if (t.startsWith('"')) return { kind: 'literal', value: JSON.parse(t) as string };
  if (t.startsWith('`')) return { kind: 'literal', value: t.slice(1, -1) };
  if (/^-?\d/.test(t)) return { kind: 'literal', value: Number(t) };
  if (KEYWORDS.has(t)) fail(`"${t}" is not supported in a username template`);
  if (t.startsWith('/*')) fail('a comment must be alone in its action');
  return { kind: 'ident', name: t };
}

function evaluate(node: Node, meta: UsernameMetadata): Value {
  if (node.kind === 'literal') return node.value;
  if (node.kind === 'field') {
    if (node.name === 'RoleName') return meta.roleName;
    if (node.name === 'DisplayName') return meta.displayName;
    return fail(`unknown field ".${node.name}" (there are .RoleName and .DisplayName)`);
  }
  if (node.kind === 'ident') return call(node.name, []);
  let piped: Value | undefined;
  for (const [head, ...rest] of node.commands) {
    const args = rest.map((n) => evaluate(n, meta));
    if (piped !== undefined) args.push(piped);
    if (head?.kind === 'ident') piped = call(head.name, args);
    else if (args.length > 0) fail('arguments given to something that is not a function');
    else piped = evaluate(head as Node, meta);
  }
  return piped as Value;
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const FUNCTIONS: Record<string, { params: ('int' | 'string')[]; fn: (...a: never[]) => Value }> = {
  random: { params: ['int'], fn: (n: number) => Array.from({ length: n }, () => BASE62[randomInt(62)]).join('') },
  truncate: { params: ['int', 'string'], fn: (n: number, s: string) => (n > 0 ? s.slice(0, n) : badLength(n, 0)) },
  truncate_sha256: {
    params: ['int', 'string'],
    fn: (n: number, s: string) =>
      n <= 8 ? badLength(n, 8) : s.length <= n ? s : s.slice(0, n - 8) + sha256(s.slice(n - 8)).slice(0, 8),
  },
  uppercase: { params: ['string'], fn: (s: string) => s.toUpperCase() },
  lowercase: { params: ['string'], fn: (s: string) => s.toLowerCase() },
  replace: { params: ['string', 'string', 'string'], fn: (a: string, b: string, s: string) => s.split(a).join(b) },
  sha256: { params: ['string'], fn: sha256 },
  base64: { params: ['string'], fn: (s: string) => Buffer.from(s).toString('base64') },
  unix_time: { params: [], fn: () => String(Math.floor(Date.now() / 1000)) },
  unix_time_millis: { params: [], fn: () => String(Date.now()) },
  uuid: { params: [], fn: () => randomUUID() },
  timestamp: { params: ['string'], fn: (layout: string) => goTimeFormat(new Date(), layout) },
};

function badLength(n: number, min: number): never {
  return fail(`max length must be > ${min} but was ${n}`);
}

function call(name: string, args: Value[]): Value {
  if (name === 'printf') return printf(args);
  const f = FUNCTIONS[name];
  if (!f) return fail(`unknown function "${name}" (known: printf, ${Object.keys(FUNCTIONS).join(', ')})`);
  if (args.length !== f.params.length)
    fail(`${name} takes ${f.params.length} argument(s) (the piped value counts), got ${args.length}`);
  args.forEach((a, i) => {
    const want = f.params[i];
    if (want === 'int' ? !Number.isInteger(a) : typeof a !== 'string')
      fail(
        `${name}: argument ${i + 1} must be ${want === 'int' ? 'an integer' : 'a string'}, got ${JSON.stringify(a)}`,
      );
  });
  return f.fn(...(args as never[]));
}

/** Go's fmt verbs that make sense for names: %s, %d, %v, %q and %%. */
function printf(args: Value[]): string {
  const [format, ...rest] = args;
  if (typeof format !== 'string') return fail('printf needs a format string first');
  let next = 0;
  return format.replace(/%([sdvq%])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    if (next >= rest.length) return `%!${verb}(MISSING)`;
    const v = rest[next++] as Value;
    return verb === 'q' ? JSON.stringify(String(v)) : String(v);
  });
}

const MONTHS = 'January February March April May June July August September October November December'.split(' ');
const DAYS = 'Sunday Monday Tuesday Wednesday Thursday Friday Saturday'.split(' ');
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Go's reference-time layouts ("2006-01-02T15:04:05Z07:00"), in UTC. */
function goTimeFormat(d: Date, layout: string): string {
  const h12 = d.getUTCHours() % 12 || 12;
  const month = MONTHS[d.getUTCMonth()] as string;
  const day = DAYS[d.getUTCDay()] as string;
  // Longest first, as Go matches them: "2006" before "2", "January" before "Jan".
  const chunks: [string, () => string][] = [
    ['January', () => month],
    ['Jan', () => month.slice(0, 3)],
    ['Monday', () => day],
    ['Mon', () => day.slice(0, 3)],
    ['MST', () => 'UTC'],
    ['2006', () => String(d.getUTCFullYear())],
    ['Z07:00', () => 'Z'],
    ['-07:00', () => '+00:00'],
    ['Z0700', () => 'Z'],
    ['-0700', () => '+0000'],
    ['06', () => pad(d.getUTCFullYear() % 100)],
    ['01', () => pad(d.getUTCMonth() + 1)],
    ['02', () => pad(d.getUTCDate())],
    ['_2', () => String(d.getUTCDate()).padStart(2, ' ')],
    ['15', () => pad(d.getUTCHours())],
    ['03', () => pad(h12)],
    ['04', () => pad(d.getUTCMinutes())],
    ['05', () => pad(d.getUTCSeconds())],
    ['PM', () => (d.getUTCHours() < 12 ? 'AM' : 'PM')],
    ['pm', () => (d.getUTCHours() < 12 ? 'am' : 'pm')],
    ['1', () => String(d.getUTCMonth() + 1)],
    ['2', () => String(d.getUTCDate())],
    ['3', () => String(h12)],
    ['4', () => String(d.getUTCMinutes())],
    ['5', () => String(d.getUTCSeconds())],
  ];
  const byChunk = new Map(chunks);
  const re = new RegExp(`\\.0{1,9}(?!\\d)|${chunks.map(([k]) => k).join('|')}`, 'g');
  const fraction = (m: string) =>
    `.${pad(d.getUTCMilliseconds(), 3)
      .padEnd(9, '0')
      .slice(0, m.length - 1)}`;
  return layout.replace(re, (m) => (m.startsWith('.') ? fraction(m) : (byChunk.get(m) as () => string)()));
}

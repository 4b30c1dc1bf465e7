// The agent's file templates: a small, documented subset of Go's text/template, enough for Vault-agent-style
// templates (docs/in-pod-agent.md, "Templates"):
//   {{ .Data.key }}               a field of the item's secret (a KV field, or a field of e.g. database/creds)
//   {{ index .Data "odd-key" }}   a field whose name is not an identifier
//   {{ .Data }}                   every field, as JSON
//   {{ dockerconfigjson .Data }}  a kubernetes.io/dockerconfigjson document from registry, username, password
//   ... | b64enc | b64dec | toJson  pipes
//   {{- and -}}                   trim the white space before or after the action, as in Go
// Anything else is an error when the configuration is read, naming the action but never a value. Non-string values
// print as JSON. A missing field is an error at render time, naming the field.
import { dockerConfigJson, DockerConfigError } from '../dockerconfig.js';

export class TemplateError extends Error {}

type Head = { kind: 'field'; key: string } | { kind: 'all' } | { kind: 'dockerconfigjson' };
type Node = { kind: 'text'; text: string } | { kind: 'action'; head: Head; pipes: Pipe[] };
type Pipe = 'b64enc' | 'b64dec' | 'toJson';

const PIPES: readonly Pipe[] = ['b64enc', 'b64dec', 'toJson'];

export function parseTemplate(template: string): Node[] {
  const nodes: Node[] = [];
  let rest = template;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      nodes.push({ kind: 'text', text: rest });
      break;
    }
    let before = rest.slice(0, open);
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError('unclosed action: "{{" without "}}"');
    let inner = rest.slice(open + 2, close);
    rest = rest.slice(close + 2);
    if (inner.startsWith('-') && /^-\s/.test(inner)) {
      before = before.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      rest = rest.replace(/^\s+/, '');
    }
    nodes.push({ kind: 'text', text: before });
    nodes.push(parseAction(inner.trim()));
  }
  return nodes.filter((n) => n.kind !== 'text' || n.text !== '');
}

function parseAction(expr: string): Node {
  const [head = '', ...pipes] = expr.split('|').map((s) => s.trim());
  for (const fn of pipes) {
    if (!PIPES.includes(fn as Pipe)) throw new TemplateError(`unknown function "${fn}" (known: ${PIPES.join(', ')})`);
  }
  return { kind: 'action', head: parseHead(head), pipes: pipes as Pipe[] };
}

function parseHead(head: string): Head {
  if (head === '.Data') return { kind: 'all' };
  const dot = /^\.Data\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(head);
  if (dot) return { kind: 'field', key: dot[1]! };
  const index = /^index\s+\.Data\s+"((?:[^"\\]|\\.)*)"$/.exec(head);
  if (index) return { kind: 'field', key: JSON.parse(`"${index[1]}"`) as string };
  if (/^dockerconfigjson\s+\.Data$/.test(head)) return { kind: 'dockerconfigjson' };
  throw new TemplateError(
    `unsupported action "{{ ${head} }}" (supported: .Data.KEY, index .Data "KEY", .Data, dockerconfigjson .Data)`,
  );
}

function asString(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function renderTemplate(nodes: Node[], data: Record<string, unknown>): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') {
      out += node.text;
      continue;
    }
    let value: string;
    if (node.head.kind === 'all') value = JSON.stringify(data);
    else if (node.head.kind === 'dockerconfigjson') {
      try {
        value = dockerConfigJson(data);
      } catch (err) {
        if (err instanceof DockerConfigError) throw new TemplateError(err.message);
        throw err;
      }
    } else {
      if (!Object.hasOwn(data, node.head.key)) throw new TemplateError(`the secret has no field "${node.head.key}"`);
      value = asString(data[node.head.key]);
    }
    for (const fn of node.pipes) {
      if (fn === 'b64enc') value = Buffer.from(value, 'utf8').toString('base64');
      else if (fn === 'b64dec') value = Buffer.from(value, 'base64').toString('utf8');
      else value = JSON.stringify(value);
    }
    out += value;
  }
  return out;
}

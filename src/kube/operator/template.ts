// The per-key templates of spec.target.templates, the small subset of Go templates the CRD documents:
// {{ .key }}, {{ index . "odd-key" }}, {{ . }}-free pipelines through b64enc / b64dec / toJson, and
// {{ dockerconfigjson . }}, a whole kubernetes.io/dockerconfigjson document from the keys registry, username and
// password (src/kube/dockerconfig.ts). Anything else inside {{ }} is an error (reported as reason TemplateFailed,
// naming the template key but never a value).
import { dockerConfigJson, DockerConfigError } from '../dockerconfig.js';

export class TemplateError extends Error {}

const ACTION = /\{\{-?\s*([\s\S]*?)\s*-?\}\}/g;

export function render(template: string, data: Record<string, string>): string {
  return template.replace(ACTION, (_all, expr: string) => evaluate(expr, data));
}

function evaluate(expr: string, data: Record<string, string>): string {
  const [head = '', ...pipes] = expr.split('|').map((s) => s.trim());
  let value = lookup(head, data);
  for (const fn of pipes) {
    if (fn === 'b64enc') value = Buffer.from(value, 'utf8').toString('base64');
    else if (fn === 'b64dec') value = Buffer.from(value, 'base64').toString('utf8');
    else if (fn === 'toJson') value = JSON.stringify(value);
    else throw new TemplateError(`unknown function "${fn}" (known: b64enc, b64dec, toJson)`);
  }
  return value;
}

function lookup(head: string, data: Record<string, string>): string {
  if (/^dockerconfigjson\s+\.$/.test(head)) {
    try {
      return dockerConfigJson(data);
    } catch (err) {
      if (err instanceof DockerConfigError) throw new TemplateError(err.message);
      throw err;
    }
  }
  let key: string | undefined;
  const dot = /^\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(head);
  const index = /^index\s+\.\s+"((?:[^"\\]|\\.)*)"$/.exec(head);
  if (dot) key = dot[1];
  else if (index) key = JSON.parse(`"${index[1]}"`) as string;
  else throw new TemplateError(`unsupported template action "{{ ${head} }}"`);
  if (key === undefined || !Object.hasOwn(data, key)) throw new TemplateError(`the source has no key "${key}"`);
  return data[key]!;
}

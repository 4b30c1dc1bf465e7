// Turns one item's secret into what is delivered: the bytes of its file (env lines, JSON, one raw value or a
// template) or its env vars. Errors name the item and the field, never a value.
import type { FileOutput, Item } from './config.js';
import { parseTemplate, renderTemplate, TemplateError } from './template.js';

export class RenderError extends Error {}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function asString(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The fields the item asked for (`keys`), or all of them. */
export function selectFields(item: Item, data: Record<string, unknown>): Record<string, unknown> {
  if (!item.keys) return data;
  const out: Record<string, unknown> = {};
  for (const key of item.keys) {
    if (!Object.hasOwn(data, key))
      throw new RenderError(`item "${item.name}": ${item.source.path} has no field "${key}"`);
    out[key] = data[key];
  }
  return out;
}

/** Characters that mean nothing to a POSIX shell or a dotenv reader, so a value made only of them is written bare. */
const ENV_PLAIN = /^[A-Za-z0-9_@%+=:,./-]*$/;
/** What a shell still expands, or a dotenv reader unescapes, inside double quotes. */
const ENV_DOUBLE_QUOTED_SPECIAL = /[$`\\"\n\r]/;

/**
 * A KEY=value line that a shell may source (`set -a; . file.env`) and a dotenv reader may parse: a value with any
 * other character is quoted so that a POSIX shell expands nothing of it. Double quotes when it holds nothing a shell
 * expands in them (so a single quote, as in "it's", reads back the same in both); single quotes otherwise, the one
 * quoting in which a shell expands nothing (a single quote inside is written '\''; dotenv readers do not know that
 * form, so such a value, holding both a single quote and one of $ ` \ " or a new line, is for shells only). JSON
 * quoting, used before, still ran `$(...)` and backticks in a value when the file was sourced.
 */
function envLine(key: string, value: string): string {
  if (ENV_PLAIN.test(value)) return `${key}=${value}\n`;
  if (!ENV_DOUBLE_QUOTED_SPECIAL.test(value)) return `${key}="${value}"\n`;
  return `${key}='${value.replaceAll("'", "'\\''")}'\n`;
}

export function renderFile(item: Item, output: FileOutput, data: Record<string, unknown>): string {
  const fields = selectFields(item, data);
  switch (output.format) {
    case 'json':
      return `${JSON.stringify(fields)}\n`;
    case 'raw': {
      const keys = Object.keys(fields);
      if (keys.length !== 1) {
        throw new RenderError(
          `item "${item.name}": format "raw" writes exactly one key, but ${item.source.path} has ${keys.length} ` +
            `(${keys.join(', ')}); name one in "keys"`,
        );
      }
      return asString(fields[keys[0]!]);
    }
    case 'env':
      return Object.entries(fields)
        .map(([key, value]) => {
          if (!ENV_NAME.test(key)) {
            throw new RenderError(`item "${item.name}": field "${key}" is not a valid variable name for format "env"`);
          }
          return envLine(key, asString(value));
        })
        .join('');
    case 'template':
      try {
        return renderTemplate(parseTemplate(output.template ?? ''), fields);
      } catch (err) {
        if (err instanceof TemplateError) throw new RenderError(`item "${item.name}": template: ${err.message}`);
        throw err;
      }
  }
}

/** Env var name → value, for `cofre agent exec`. */
export function renderEnv(
  item: Item,
  vars: Record<string, string>,
  data: Record<string, unknown>,
): Record<string, string> {
  const fields = selectFields(item, data);
  const out: Record<string, string> = {};
  for (const [name, field] of Object.entries(vars)) {
    if (!Object.hasOwn(fields, field))
      throw new RenderError(`item "${item.name}": ${item.source.path} has no field "${field}" (for ${name})`);
    const value = asString(fields[field]);
    if (value.includes('\0'))
      throw new RenderError(`item "${item.name}": field "${field}" holds a NUL byte, which an env var cannot`);
    out[name] = value;
  }
  return out;
}

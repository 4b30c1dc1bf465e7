import { CliError, usageError } from './errors.js';
import { defaultSources, type InputSources } from './input.js';

/**
 * A definition (a delivery, a placement) from a file, or from stdin with "-" ("@path" is read as "path", as
 * `cofre write` takes it). JSON first; anything that is not JSON is read as YAML, which is what platform teams keep
 * next to their manifests. The YAML parser is the one @kubernetes/client-node ships, loaded only when needed.
 */
export async function readDefinition(
  source: string,
  sources: InputSources = defaultSources,
): Promise<Record<string, unknown>> {
  const path = source.startsWith('@') ? source.slice(1) : source;
  const from = path === '-' ? 'stdin' : path;
  let text: string;
  try {
    text = path === '-' ? await sources.readStdin() : await sources.readFile(path);
  } catch (err) {
    throw new CliError(`Error reading file ${path}: ${(err as Error).message}`, 1);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const { loadYaml } = await import('@kubernetes/client-node');
    try {
      value = loadYaml(text);
    } catch (err) {
      throw usageError(`Failed to parse ${from} as JSON or YAML: ${(err as Error).message}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw usageError(`Expected an object (JSON or YAML) in ${from}`);
  }
  return value as Record<string, unknown>;
}

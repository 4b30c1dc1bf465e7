import { readFile } from 'node:fs/promises';
import { CliError, usageError } from './errors.js';

/** Where `@file` and `-` arguments are read from (replaceable in tests). */
export interface InputSources {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
}

/** Reads all of stdin (and lets go of it, so the process can exit). */
export async function readStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export const defaultSources: InputSources = {
  readFile: (path) => readFile(path, 'utf8'),
  readStdin: () => readStdin(),
};

function parseJsonObject(text: string, from: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw usageError(`Failed to parse JSON from ${from}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw usageError(`Expected a JSON object from ${from}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Vault's key/value arguments (its kvbuilder):
 * - `key=value`; `key=@path` reads the value from a file, `key=-` from stdin, `key=\@x` is the literal `@x`;
 * - `-` alone reads a JSON object from stdin and `@path` alone a JSON object from a file, merged in;
 * - a key given twice collects its values into a list.
 * Stdin can be read only once.
 */
export async function parseKeyValues(
  args: readonly string[],
  sources: InputSources = defaultSources,
): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  let stdinUsed = false;
  const stdin = async (): Promise<string> => {
    if (stdinUsed) throw usageError('Stdin can only be read once ("-" given twice)');
    stdinUsed = true;
    return sources.readStdin();
  };
  const add = (key: string, value: unknown): void => {
    if (!(key in result)) result[key] = value;
    else {
      const existing = result[key];
      result[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
  };
  for (const arg of args) {
    if (arg === '-') {
      Object.assign(result, parseJsonObject(await stdin(), 'stdin'));
      continue;
    }
    if (arg.startsWith('@')) {
      const path = arg.slice(1);
      Object.assign(result, parseJsonObject(await readFrom(sources, path), path));
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq <= 0) throw usageError(`Invalid key/value pair "${arg}": format must be key=value`);
    const key = arg.slice(0, eq);
    let value = arg.slice(eq + 1);
    if (value.startsWith('@')) value = await readFrom(sources, value.slice(1));
    else if (value.startsWith('\\@')) value = value.slice(1);
    else if (value === '-') value = await stdin();
    add(key, value);
  }
  return result;
}

async function readFrom(sources: InputSources, path: string): Promise<string> {
  try {
    return await sources.readFile(path);
  } catch (err) {
    throw new CliError(`Error reading file ${path}: ${(err as Error).message}`, 1);
  }
}

/**
 * Asks for a secret: hidden input on a terminal (prompt on stderr), otherwise the first line of stdin
 * (so `echo KEY | cofre operator unseal` works).
 */
export async function promptSecret(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const text = await readStdin(stdin);
    return (text.split(/\r?\n/)[0] ?? '').trim();
  }
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value.trim());
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new CliError('Interrupted', 1));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

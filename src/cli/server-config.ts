import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { locateHclError, pointAt, position } from './hcl-position.js';

/** The server's configuration file, HCL or JSON, in Vault's layout. */
import { parsePkcs11Seal, type Pkcs11SealConfig } from '../seal/pkcs11-config.js';
import type { StorageConfig } from '../storage/open.js';
import { invalidBrowserHost } from '../http/browser-hosts.js';

export interface ServerConfig {
  storage: StorageConfig;
  listener: { address: string; tlsCertFile?: string; tlsKeyFile?: string; tlsDisable: boolean };
  apiAddr?: string;
  ui: boolean;
  logLevel: string;
  /** File audit devices may only write under this directory (after resolving links and `..`). */
  auditFilePathPrefix?: string;
  /** seal "pkcs11" {...}; without it, the Shamir seal. */
  seal?: Pkcs11SealConfig;
  /** `workers = N`: server threads sharing the store (Cofre's key; `--workers` overrides it). */
  workers?: number;
  /** `browser_hosts`: names browsers may reach the server by, besides the listener's and api_addr's (Cofre's key). */
  browserHosts: string[];
}

export type Block = Record<string, unknown>;

/** HCL blocks come back from hcl2-parser as `{ storage: { sqlite: [ {...} ] } }`; JSON may omit the arrays. */
export function labelledBlock(doc: Block, name: string): { label: string; body: Block } | undefined {
  const raw = doc[name];
  const block = Array.isArray(raw) ? raw[0] : raw;
  if (!block || typeof block !== 'object') return undefined;
  const [label, inner] = Object.entries(block as Block)[0] ?? [];
  if (label === undefined) return undefined;
  const body = Array.isArray(inner) ? inner[0] : inner;
  return { label, body: (body ?? {}) as Block };
}

function str(body: Block, key: string): string | undefined {
  const v = body[key];
  return v === undefined || v === null ? undefined : String(v);
}

type HclParser = { parseToObject(text: string): [Block | null, unknown] };
let hclParser: HclParser | undefined;

/** The HCL document, or undefined when hcl2-parser refuses the text (it says neither why nor where). */
function parseHcl(text: string): Block | undefined {
  hclParser ??= createRequire(import.meta.url)('hcl2-parser') as HclParser;
  try {
    const [doc, err] = hclParser.parseToObject(text);
    return err || !doc ? undefined : doc;
  } catch {
    return undefined; // the GopherJS runtime may throw instead of returning its error
  }
}

/** "FILE:LINE:COLUMN: what: message", then the line with a caret under the column. */
function syntaxError(
  file: string,
  text: string,
  { line, column }: { line: number; column: number },
  what: string,
  message: string,
): Error {
  return new Error(`${file}:${line}:${column}: ${what}: ${message}\n${pointAt(text, line, column)}`);
}

/**
 * Where JSON.parse stopped. V8 gives "at position N" for most mistakes, but for an unexpected token it quotes
 * the text around it instead (which may hold a password); then the position is the end of the longest prefix
 * that could still begin a valid document.
 */
function parseJson(file: string, text: string): Block {
  try {
    return JSON.parse(text) as Block;
  } catch (err) {
    const message = (err as Error).message.replace(/, (\.\.\.)?".*$/s, '').replace(/ in JSON at .*$/s, '');
    const at = /at position (\d+)/.exec((err as Error).message)?.[1];
    const offset = at === undefined ? validPrefix(text) : Number(at);
    throw syntaxError(file, text, position(text, offset), 'invalid JSON', message);
  }
}

/** The length of the longest prefix of `text` that some valid JSON document begins with (binary search). */
function validPrefix(text: string): number {
  const ok = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return true;
    } catch (err) {
      const message = (err as Error).message;
      return /end of JSON input/.test(message) || /at position (\d+)/.exec(message)?.[1] === String(n);
    }
  };
  let good = 0;
  let bad = text.length;
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (ok(mid)) good = mid;
    else bad = mid;
  }
  return good;
}

/** A config file as a plain object: JSON (a .json file, or text starting with "{"), else HCL. */
export function parseDocument(file: string, text: string): Block {
  if (file.endsWith('.json') || text.trimStart().startsWith('{')) return parseJson(file, text);
  const doc = parseHcl(text);
  if (doc) return doc;
  const problem = locateHclError(text, (part) => parseHcl(part) !== undefined);
  if (!problem) throw new Error(`${file}: invalid HCL (the parser gives no position; check quotes and braces)`);
  throw syntaxError(file, text, problem, 'invalid HCL', problem.message);
}

export function loadServerConfig(file: string): ServerConfig {
  const doc = parseDocument(file, readFileSync(file, 'utf8'));
  const storage = labelledBlock(doc, 'storage');
  if (!storage)
    throw new Error(`${file}: a storage block is required, e.g. storage "sqlite" { path = "/var/lib/cofre/cofre.db" }`);
  const storageConfig = parseStorage(file, storage.label, storage.body);
  const listener = labelledBlock(doc, 'listener');
  if (listener && listener.label !== 'tcp')
    throw new Error(`${file}: unsupported listener "${listener.label}" (supported: tcp)`);
  const lb = listener?.body ?? {};
  const tlsDisable = lb.tls_disable === true || lb.tls_disable === 'true' || lb.tls_disable === 1;
  const config: ServerConfig = {
    storage: storageConfig,
    listener: {
      address: str(lb, 'address') ?? '127.0.0.1:8200',
      tlsDisable,
      ...(str(lb, 'tls_cert_file') ? { tlsCertFile: str(lb, 'tls_cert_file') } : {}),
      ...(str(lb, 'tls_key_file') ? { tlsKeyFile: str(lb, 'tls_key_file') } : {}),
    },
    ui: doc.ui === true,
    logLevel: str(doc, 'log_level') ?? 'info',
    ...(str(doc, 'api_addr') ? { apiAddr: str(doc, 'api_addr') } : {}),
    ...(str(doc, 'audit_file_path_prefix') ? { auditFilePathPrefix: str(doc, 'audit_file_path_prefix') } : {}),
    browserHosts: parseBrowserHosts(file, doc.browser_hosts),
  };
  const workers = str(doc, 'workers');
  if (workers !== undefined) {
    if (!/^[1-9]\d*$/.test(workers) || Number(workers) > 64) {
      throw new Error(`${file}: workers must be a whole number from 1 to 64, not "${workers}"`);
    }
    config.workers = Number(workers);
  }
  const seal = labelledBlock(doc, 'seal');
  if (seal) {
    if (seal.label !== 'pkcs11') throw new Error(`${file}: unsupported seal "${seal.label}" (supported: pkcs11)`);
    config.seal = parsePkcs11Seal(file, seal.body);
  }
  if (!tlsDisable && (!config.listener.tlsCertFile || !config.listener.tlsKeyFile)) {
    throw new Error(`${file}: listener "tcp" needs tls_cert_file and tls_key_file, or tls_disable = true`);
  }
  return config;
}

/** browser_hosts = ["cofre.example.com", ...] (or one name as a string); each a host name, an address or "*". */
function parseBrowserHosts(file: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const names = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(names) || !names.every((n): n is string => typeof n === 'string')) {
    throw new Error(`${file}: browser_hosts must be a list of host names, e.g. browser_hosts = ["cofre.example.com"]`);
  }
  for (const name of names) {
    const problem = invalidBrowserHost(name);
    if (problem) throw new Error(`${file}: browser_hosts: ${problem}`);
  }
  return names;
}

/**
 * storage "sqlite" { path } or storage "postgresql" { connection_url, table, max_connections }. The URL may come
 * from COFRE_PG_CONNECTION_URL (or Vault's VAULT_PG_CONNECTION_URL) instead, to keep its password out of the file.
 */
export function parseStorage(
  file: string,
  label: string,
  body: Block,
  env: NodeJS.ProcessEnv = process.env,
  blockName = 'storage',
): StorageConfig {
  if (label === 'sqlite') {
    const path = str(body, 'path');
    if (!path) throw new Error(`${file}: ${blockName} "sqlite" needs a path`);
    return { type: 'sqlite', path };
  }
  if (label === 'postgresql') {
    const connectionUrl = str(body, 'connection_url') ?? env.COFRE_PG_CONNECTION_URL ?? env.VAULT_PG_CONNECTION_URL;
    if (!connectionUrl) {
      throw new Error(
        `${file}: storage "postgresql" needs connection_url (or COFRE_PG_CONNECTION_URL in the environment)`,
      );
    }
    const max = str(body, 'max_connections') ?? str(body, 'max_parallel');
    if (max !== undefined && !/^[1-9]\d*$/.test(max)) {
      throw new Error(`${file}: ${blockName} "postgresql": max_connections must be a positive integer`);
    }
    const table = str(body, 'table');
    return {
      type: 'postgresql',
      connectionUrl,
      ...(table ? { table } : {}),
      ...(max ? { maxConnections: Number(max) } : {}),
    };
  }
  throw new Error(`${file}: unsupported ${blockName} "${label}" (supported: sqlite, postgresql)`);
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid listen address "${address}"`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

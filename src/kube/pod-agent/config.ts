// COFRE_AGENT_CONFIG: the JSON the webhook writes (docs/in-pod-agent.md, "The configuration"). Validated whole
// before anything is fetched, unknown fields refused, every message naming the item and the field at fault, so a
// pod that cannot get its secrets says why in its init container's log.
import { constants } from 'node:os';
import path from 'node:path';
import { DEFAULT_AUTH_MOUNT, DEFAULT_FILES_DIR, DEFAULT_TOKEN_PATH } from './contract.js';
import { parseTemplate } from './template.js';

export type FileFormat = 'env' | 'json' | 'raw' | 'template';

export interface FileOutput {
  kind: 'file';
  /** Relative to files_dir. */
  path: string;
  mode: number;
  format: FileFormat;
  template?: string;
}

export interface EnvOutput {
  kind: 'env';
  /** Env var name → field. */
  vars: Record<string, string>;
}

export interface Item {
  name: string;
  /** `kv`: a KV secret (v1 or v2, found out from the mount); `path`: any readable path, its lease renewed. */
  source: { kind: 'kv' | 'path'; path: string };
  keys?: string[];
  output: FileOutput | EnvOutput;
}

export interface OnChange {
  signal?: NodeJS.Signals;
  pidFile?: string;
  processName?: string;
  /** Exit (code EXIT_ON_CHANGE) after re-rendering, so the kubelet restarts the container. */
  exit?: boolean;
}

export interface AgentConfig {
  auth: { mount: string; role: string; tokenPath: string };
  filesDir: string;
  installTo?: string;
  /** Where the token and leases are kept for the next agent run of the pod (handover.ts). */
  stateFile?: string;
  /** The sidecar: state files of `cofre agent exec` runs whose leases it renews (exec-leases.ts). */
  execStateFiles: string[];
  revokeOnExit: boolean;
  onChange?: OnChange;
  items: Item[];
}

export class ConfigError extends Error {}

type Obj = Record<string, unknown>;

const ITEM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MODE = /^0?[0-7]{3}$/;
const FORMATS: readonly FileFormat[] = ['env', 'json', 'raw', 'template'];

function fail(where: string, message: string): never {
  throw new ConfigError(`COFRE_AGENT_CONFIG: ${where}: ${message}`);
}

function object(value: unknown, where: string): Obj {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(where, 'must be a JSON object');
  return value as Obj;
}

function onlyFields(obj: Obj, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(where, `unknown field "${key}" (known: ${allowed.join(', ')})`);
  }
}

function text(obj: Obj, key: string, where: string, required: true): string;
function text(obj: Obj, key: string, where: string, required?: false): string | undefined;
function text(obj: Obj, key: string, where: string, required = false): string | undefined {
  const value = obj[key];
  if (value === undefined) {
    if (required) fail(where, `"${key}" is required`);
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '') fail(where, `"${key}" must be a non-empty string`);
  return value;
}

/** A path inside the mount: relative, no "." or ".." segments, so an item can only write under files_dir. */
function relativeFile(value: string, where: string): string {
  const segments = value.split('/');
  if (value.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    fail(where, `file.path "${value}" must be a relative path under files_dir without "." or ".." segments`);
  }
  return value;
}

function absolute(value: string, where: string, field: string): string {
  if (!path.isAbsolute(value)) fail(where, `"${field}" must be an absolute path, got "${value}"`);
  return path.normalize(value);
}

export function parseConfig(raw: string | undefined): AgentConfig {
  if (raw === undefined || raw.trim() === '') {
    throw new ConfigError('COFRE_AGENT_CONFIG is not set: the agent needs its configuration (docs/in-pod-agent.md)');
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`COFRE_AGENT_CONFIG is not valid JSON: ${(err as Error).message}`);
  }
  const top = object(json, 'the configuration');
  onlyFields(
    top,
    ['auth', 'files_dir', 'install_to', 'state_file', 'exec_state_files', 'revoke_on_exit', 'on_change', 'items'],
    'the configuration',
  );

  const authObj = object(top.auth ?? fail('the configuration', '"auth" is required'), 'auth');
  onlyFields(authObj, ['mount', 'role', 'token_path'], 'auth');
  const auth = {
    mount: (text(authObj, 'mount', 'auth') ?? DEFAULT_AUTH_MOUNT).replace(/^\/+|\/+$/g, ''),
    role: text(authObj, 'role', 'auth', true),
    tokenPath: absolute(text(authObj, 'token_path', 'auth') ?? DEFAULT_TOKEN_PATH, 'auth', 'token_path'),
  };

  const filesDir = absolute(text(top, 'files_dir', 'the configuration') ?? DEFAULT_FILES_DIR, 'files_dir', 'files_dir');
  const installTo =
    top.install_to === undefined
      ? undefined
      : absolute(text(top, 'install_to', 'install_to', true), 'install_to', 'install_to');
  const stateFile =
    top.state_file === undefined
      ? undefined
      : absolute(text(top, 'state_file', 'state_file', true), 'state_file', 'state_file');
  const outsideFiles = (file: string, field: string): string => {
    if ((file + '/').startsWith(`${filesDir}/`))
      fail(field, 'must not be in files_dir: it holds the agent token, and the application reads files_dir');
    return file;
  };
  if (stateFile) outsideFiles(stateFile, 'state_file');
  if (top.exec_state_files !== undefined && !Array.isArray(top.exec_state_files))
    fail('exec_state_files', 'must be an array of absolute paths');
  const execStateFiles = ((top.exec_state_files as unknown[] | undefined) ?? []).map((f, i) =>
    outsideFiles(
      absolute(
        typeof f === 'string' ? f : fail(`exec_state_files[${i}]`, 'must be a string'),
        'exec_state_files',
        `exec_state_files[${i}]`,
      ),
      `exec_state_files[${i}]`,
    ),
  );
  if (top.revoke_on_exit !== undefined && typeof top.revoke_on_exit !== 'boolean') {
    fail('revoke_on_exit', 'must be true or false');
  }
  const onChange = top.on_change === undefined ? undefined : parseOnChange(object(top.on_change, 'on_change'));

  if (!Array.isArray(top.items)) fail('the configuration', '"items" must be an array of items');
  const items = top.items.map((value, i) => parseItem(value, i));
  const names = new Set<string>();
  const files = new Set<string>();
  const vars = new Map<string, string>();
  for (const item of items) {
    if (names.has(item.name)) fail(`item "${item.name}"`, 'the name is used by another item');
    names.add(item.name);
    if (item.output.kind === 'file') {
      if (files.has(item.output.path))
        fail(`item "${item.name}"`, `file.path "${item.output.path}" is used by another item`);
      files.add(item.output.path);
    } else {
      for (const name of Object.keys(item.output.vars)) {
        const other = vars.get(name);
        if (other !== undefined) fail(`item "${item.name}"`, `env var ${name} is also set by item "${other}"`);
        vars.set(name, item.name);
      }
    }
  }
  return {
    auth,
    filesDir,
    installTo,
    ...(stateFile ? { stateFile } : {}),
    execStateFiles,
    revokeOnExit: top.revoke_on_exit !== false,
    onChange,
    items,
  };
}

function parseOnChange(obj: Obj): OnChange {
  onlyFields(obj, ['signal', 'pid_file', 'process_name', 'exit'], 'on_change');
  const out: OnChange = {};
  if (obj.exit !== undefined) {
    if (typeof obj.exit !== 'boolean') fail('on_change', '"exit" must be true or false');
    out.exit = obj.exit;
  }
  const signal = text(obj, 'signal', 'on_change');
  if (signal !== undefined) {
    const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`).toUpperCase();
    if (!(name in constants.signals)) fail('on_change', `"signal" ${signal} is not a signal name such as SIGHUP`);
    out.signal = name as NodeJS.Signals;
  }
  const pidFile = text(obj, 'pid_file', 'on_change');
  if (pidFile !== undefined) out.pidFile = absolute(pidFile, 'on_change', 'pid_file');
  out.processName = text(obj, 'process_name', 'on_change');
  if (out.pidFile && out.processName) fail('on_change', 'give "pid_file" or "process_name", not both');
  if (out.signal && !out.pidFile && !out.processName) {
    fail('on_change', '"signal" needs "pid_file" or "process_name": the process to signal');
  }
  if (!out.signal && (out.pidFile || out.processName))
    fail('on_change', '"signal" is required with a process to signal');
  if (!out.signal && !out.exit) fail('on_change', 'give "signal" with a process, or "exit": true');
  return out;
}

function parseItem(value: unknown, index: number): Item {
  const at = `items[${index}]`;
  const obj = object(value, at);
  const name = text(obj, 'name', at, true);
  if (!ITEM_NAME.test(name)) fail(at, `"name" ${JSON.stringify(name)} may hold only letters, digits, ".", "_" and "-"`);
  const where = `item "${name}"`;
  onlyFields(obj, ['name', 'kv', 'path', 'keys', 'file', 'env'], where);

  const kv = text(obj, 'kv', where);
  const apiPath = text(obj, 'path', where);
  if ((kv === undefined) === (apiPath === undefined)) fail(where, 'give exactly one of "kv" and "path"');
  const sourcePath = (kv ?? apiPath)!.replace(/^\/+|\/+$/g, '');
  if (sourcePath.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    fail(where, `"${kv ? 'kv' : 'path'}" ${JSON.stringify(sourcePath)} is not a clean path`);
  }
  const source = { kind: kv !== undefined ? ('kv' as const) : ('path' as const), path: sourcePath };

  let keys: string[] | undefined;
  if (obj.keys !== undefined) {
    if (!Array.isArray(obj.keys) || obj.keys.length === 0 || obj.keys.some((k) => typeof k !== 'string' || k === '')) {
      fail(where, '"keys" must be a non-empty array of field names');
    }
    keys = obj.keys as string[];
  }

  if ((obj.file === undefined) === (obj.env === undefined)) fail(where, 'give exactly one of "file" and "env"');
  let output: FileOutput | EnvOutput;
  if (obj.file !== undefined) {
    output = parseFile(object(obj.file, `${where}: file`), where);
    if (output.format === 'raw' && keys !== undefined && keys.length !== 1) {
      fail(where, 'format "raw" writes exactly one key: give one entry in "keys"');
    }
  } else {
    const env = object(obj.env, `${where}: env`);
    const vars: Record<string, string> = {};
    if (Object.keys(env).length === 0) fail(where, '"env" names no variables');
    for (const [varName, field] of Object.entries(env)) {
      if (!ENV_NAME.test(varName)) fail(where, `env var name ${JSON.stringify(varName)} is not a valid name`);
      if (typeof field !== 'string' || field === '') fail(where, `env var ${varName} must name a field (a string)`);
      if (keys && !keys.includes(field))
        fail(where, `env var ${varName} names field "${field}", which "keys" leaves out`);
      vars[varName] = field;
    }
    output = { kind: 'env', vars };
  }
  return { name, source, ...(keys ? { keys } : {}), output };
}

function parseFile(obj: Obj, where: string): FileOutput {
  onlyFields(obj, ['path', 'mode', 'format', 'template'], `${where}: file`);
  const filePath = relativeFile(text(obj, 'path', `${where}: file`, true), where);
  const modeText = text(obj, 'mode', `${where}: file`) ?? '0400';
  if (!MODE.test(modeText)) fail(where, `file.mode ${JSON.stringify(modeText)} is not an octal mode such as "0400"`);
  const format = (text(obj, 'format', `${where}: file`) ?? 'json') as FileFormat;
  if (!FORMATS.includes(format)) fail(where, `file.format "${format}" is not one of ${FORMATS.join(', ')}`);
  const template = text(obj, 'template', `${where}: file`);
  if (format === 'template') {
    if (template === undefined) fail(where, 'file.format "template" needs file.template');
    try {
      parseTemplate(template);
    } catch (err) {
      fail(where, `file.template: ${(err as Error).message}`);
    }
  } else if (template !== undefined) {
    fail(where, `file.template is only read with file.format "template" (format is "${format}")`);
  }
  return { kind: 'file', path: filePath, mode: parseInt(modeText, 8), format, ...(template ? { template } : {}) };
}

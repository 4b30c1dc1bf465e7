/**
 * Reads a pod's `cofre.dev/*` annotations into what the webhook injects. Every mistake is refused with a message
 * that names the annotation, so a pod that asked for secrets is never started without them by accident: an unknown
 * `cofre.dev/` annotation (a typo) is refused too, never ignored.
 */
import {
  ANNOTATION_PREFIX,
  BIN_DIR,
  STATUS_ANNOTATION,
  TOKEN_DIR,
  type AgentItem,
  type FileFormat,
} from './contract.js';

export class AnnotationError extends Error {}

export interface InjectorDefaults {
  /** The Kubernetes auth method's mount, without `auth/`. */
  authMount: string;
  audience: string;
  filesDir: string;
}

export interface OnChange {
  signal: string;
  pid_file?: string;
  /** The process's name as in /proc/PID/comm (at most 15 characters). */
  process_name?: string;
}

/** What the annotations ask for, before it meets the pod's containers (mutate.ts). */
export interface InjectionRequest {
  role: string;
  authMount: string;
  audience: string;
  /** Where app containers see the files (read-only). */
  filesDir: string;
  sidecar: boolean;
  revokeOnExit: boolean;
  onChange?: OnChange;
  /** `cofre.dev/command`: the command to run when a container's spec has none. */
  command?: string[];
  /** `cofre.dev/containers`: the containers that get the env items (default: every container). */
  containers?: string[];
  fileItems: AgentItem[];
  envItems: AgentItem[];
}

const A = (name: string): string => `${ANNOTATION_PREFIX}${name}`;

/** Pod-wide annotations; the item annotations are `<prefix><item name>`. */
const POD_ANNOTATIONS = new Set([
  'role',
  'auth-path',
  'audience',
  'mode',
  'files-dir',
  'sidecar',
  'revoke-on-exit',
  'on-change-signal',
  'on-change-pid-file',
  'on-change-process',
  'command',
  'containers',
]);
/**
 * Ours, the operator's (its rollout stamp on pod templates), and `cofre.dev/inject` written as an annotation too
 * (the label is what opts in; the annotation alone does nothing, docs/in-pod-delivery.md says so).
 */
const IGNORED_ANNOTATIONS = new Set([STATUS_ANNOTATION, A('content-hash'), A('inject')]);
const ITEM_PREFIXES = ['secret', 'creds', 'keys', 'filename', 'filemode', 'format', 'template', 'env'] as const;
type ItemField = (typeof ITEM_PREFIXES)[number];

const ITEM_NAME = /^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FORMATS: readonly FileFormat[] = ['env', 'json', 'raw', 'template'];
/** The signals an app is commonly told to reload with; a typo here would go unnoticed until the first rotation. */
const SIGNALS = new Set(['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']);

/** Quotes a value for a message, cut short: annotations hold no secret values, but templates can be long. */
function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

function fail(annotation: string, why: string): never {
  throw new AnnotationError(`annotation ${annotation}: ${why}`);
}

function bool(annotations: Record<string, string>, name: string, fallback: boolean): boolean {
  const value = annotations[A(name)];
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return fail(A(name), `expected "true" or "false", got ${shown(value)}`);
}

/** A Cofre path such as `secret/app/db`: at least two segments, none empty, `.` or `..`. */
function cofrePath(annotation: string, value: string): string {
  const path = value.trim().replace(/^\/+|\/+$/g, '');
  const segments = path.split('/');
  if (segments.length < 2 || segments.some((s) => s === '' || s === '.' || s === '..' || /\s/.test(s)))
    fail(annotation, `expected a path of the form <mount>/<path> (such as secret/app/db), got ${shown(value)}`);
  return path;
}

function absoluteDir(annotation: string, value: string): string {
  const segments = value.split('/').slice(1);
  if (!value.startsWith('/') || segments.some((s) => s === '.' || s === '..') || value.length > 200)
    fail(annotation, `expected an absolute directory such as /cofre/secrets, got ${shown(value)}`);
  const dir = value.replace(/\/+$/, '');
  if (dir === '') fail(annotation, 'the files directory cannot be /');
  if (dir === BIN_DIR || dir === TOKEN_DIR) fail(annotation, `${dir} is where the injector mounts its own volumes`);
  return dir;
}

function relativeFile(annotation: string, value: string): string {
  const segments = value.split('/');
  if (value.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..'))
    fail(annotation, `expected a relative file path under the files directory (such as db.json), got ${shown(value)}`);
  return value;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function stringArray(annotation: string, value: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return fail(annotation, 'expected a JSON array of strings, such as ["/app/server", "--port", "8080"]');
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.some((s) => typeof s !== 'string'))
    return fail(annotation, 'expected a non-empty JSON array of strings, such as ["/app/server", "--port", "8080"]');
  return parsed as string[];
}

/** Splits `cofre.dev/<field>-<item>` into its field and item name, or names it unknown. */
function itemAnnotation(key: string): { field: ItemField; item: string } {
  const rest = key.slice(ANNOTATION_PREFIX.length);
  for (const field of ITEM_PREFIXES) {
    if (!rest.startsWith(`${field}-`)) continue;
    const item = rest.slice(field.length + 1);
    if (!ITEM_NAME.test(item))
      fail(
        key,
        `item names are lowercase letters, digits and '-', at most 40, starting with a letter (got ${shown(item)})`,
      );
    return { field, item };
  }
  return fail(
    key,
    `unknown annotation; the pod-wide ones are ${[...POD_ANNOTATIONS].map(A).join(', ')} and the per-item ones ` +
      `${ITEM_PREFIXES.map((p) => A(`${p}-<name>`)).join(', ')}`,
  );
}

function buildItem(
  name: string,
  fields: Partial<Record<ItemField, string>>,
  podMode: 'file' | 'env',
  seen: { files: Map<string, string>; env: Map<string, string> },
): AgentItem {
  const at = (field: ItemField): string => A(`${field}-${name}`);
  if (fields.secret === undefined && fields.creds === undefined)
    fail(
      at(Object.keys(fields)[0] as ItemField),
      `no ${at('secret')} (a KV secret) or ${at('creds')} (any path) names what to read`,
    );
  if (fields.secret !== undefined && fields.creds !== undefined)
    fail(at('creds'), `an item reads one thing: give ${at('secret')} or ${at('creds')}, not both`);
  const item: AgentItem = { name };
  if (fields.secret !== undefined) item.kv = cofrePath(at('secret'), fields.secret);
  else item.path = cofrePath(at('creds'), fields.creds!);
  if (fields.keys !== undefined) {
    const keys = list(fields.keys);
    if (keys.length === 0) fail(at('keys'), 'expected a comma-separated list of field names');
    item.keys = keys;
  }

  const fileFields = (['filename', 'filemode', 'format', 'template'] as const).filter((f) => fields[f] !== undefined);
  if (fields.env !== undefined && fileFields.length > 0)
    fail(at(fileFields[0]!), `the item is delivered as environment variables (${at('env')}), not as a file`);
  const asEnv = fields.env !== undefined || (fileFields.length === 0 && podMode === 'env');

  if (asEnv) {
    const env: Record<string, string> = {};
    if (fields.env !== undefined) {
      for (const pair of list(fields.env)) {
        const [variable, field, extra] = pair.split('=').map((s) => s.trim());
        if (!variable || !field || extra !== undefined || !ENV_NAME.test(variable))
          fail(at('env'), `expected VAR=field pairs separated by commas (such as API_KEY=key), got ${shown(pair)}`);
        env[variable] = field;
      }
      if (Object.keys(env).length === 0) fail(at('env'), 'expected VAR=field pairs such as API_KEY=key');
    } else {
      // cofre.dev/mode: env without a mapping: one variable per key, named after the item and the key.
      if (!item.keys)
        fail(
          at('keys'),
          `missing: with ${A('mode')}: env the variables are named after the keys, so list them (or map them with ${at('env')})`,
        );
      for (const key of item.keys) env[`${name}_${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_')] = key;
    }
    for (const variable of Object.keys(env)) {
      const other = seen.env.get(variable);
      if (other) fail(at('env'), `the variable ${variable} is also set by the item ${other}`);
      seen.env.set(variable, name);
    }
    item.env = env;
    return item;
  }

  const path = relativeFile(at('filename'), fields.filename ?? name);
  const other = seen.files.get(path);
  if (other) fail(at('filename'), `the file ${path} is also written by the item ${other}`);
  seen.files.set(path, name);
  let mode = '0400';
  if (fields.filemode !== undefined) {
    if (!/^0?[0-7]{3}$/.test(fields.filemode))
      fail(at('filemode'), `expected an octal file mode such as 0400 or 0440, got ${shown(fields.filemode)}`);
    mode = fields.filemode.padStart(4, '0');
  }
  const format = (fields.format ?? (fields.template !== undefined ? 'template' : 'json')) as FileFormat;
  if (!FORMATS.includes(format)) fail(at('format'), `expected one of ${FORMATS.join(', ')}, got ${shown(format)}`);
  if (format === 'template' && fields.template === undefined)
    fail(at('template'), `missing: the format is template, so the item needs its template`);
  if (format !== 'template' && fields.template !== undefined)
    fail(at('format'), `a template is given, so the format is template, not ${format}`);
  if (format === 'raw' && item.keys && item.keys.length !== 1)
    fail(at('keys'), 'the raw format writes exactly one key');
  item.file = { path, mode, format, ...(fields.template !== undefined ? { template: fields.template } : {}) };
  return item;
}

/** Parses the annotations of an opted-in pod. Throws AnnotationError naming the first bad annotation. */
export function parseAnnotations(
  annotations: Record<string, string> | undefined,
  defaults: InjectorDefaults,
): InjectionRequest {
  const all = annotations ?? {};
  const items = new Map<string, Partial<Record<ItemField, string>>>();
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(ANNOTATION_PREFIX) || IGNORED_ANNOTATIONS.has(key)) continue;
    if (POD_ANNOTATIONS.has(key.slice(ANNOTATION_PREFIX.length))) continue;
    const { field, item } = itemAnnotation(key);
    const fields = items.get(item) ?? {};
    fields[field] = value;
    items.set(item, fields);
  }

  const role = all[A('role')]?.trim();
  if (!role) fail(A('role'), 'missing: the Kubernetes auth role the pod logs in to Cofre with');
  if (!/^[\w.@-]+$/.test(role)) fail(A('role'), `not a role name: ${shown(role)}`);
  let authMount = defaults.authMount;
  const authPath = all[A('auth-path')];
  if (authPath !== undefined) {
    authMount = authPath
      .trim()
      .replace(/^\/+|\/+$/g, '')
      .replace(/^auth\//, '');
    if (!/^[\w.-]+(\/[\w.-]+)*$/.test(authMount) || authMount.split('/').some((s) => s === '.' || s === '..'))
      fail(
        A('auth-path'),
        `expected the auth method's mount such as kubernetes or auth/kubernetes, got ${shown(authPath)}`,
      );
  }
  const audience = all[A('audience')]?.trim() ?? defaults.audience;
  if (!audience) fail(A('audience'), 'must not be empty');
  const mode = all[A('mode')] ?? 'file';
  if (mode !== 'file' && mode !== 'env') fail(A('mode'), `expected "file" or "env", got ${shown(mode)}`);
  const filesDir =
    all[A('files-dir')] !== undefined ? absoluteDir(A('files-dir'), all[A('files-dir')]!) : defaults.filesDir;

  const request: InjectionRequest = {
    role,
    authMount,
    audience,
    filesDir,
    sidecar: bool(all, 'sidecar', false),
    revokeOnExit: bool(all, 'revoke-on-exit', true),
    fileItems: [],
    envItems: [],
  };
  const signal = all[A('on-change-signal')];
  const pidFile = all[A('on-change-pid-file')];
  const processName = all[A('on-change-process')];
  if (signal !== undefined) {
    if (!SIGNALS.has(signal))
      fail(A('on-change-signal'), `expected one of ${[...SIGNALS].join(', ')}, got ${shown(signal)}`);
    request.onChange = { signal };
    if (pidFile !== undefined && processName !== undefined)
      fail(A('on-change-process'), `give ${A('on-change-process')} or ${A('on-change-pid-file')}, not both`);
    if (pidFile === undefined && processName === undefined)
      fail(
        A('on-change-signal'),
        `say which process gets ${signal}: ${A('on-change-process')} (its name, as in /proc/PID/comm) or ` +
          `${A('on-change-pid-file')} (a file holding its pid)`,
      );
    if (pidFile !== undefined) {
      if (!pidFile.startsWith('/') || pidFile.split('/').some((s) => s === '..'))
        fail(A('on-change-pid-file'), `expected an absolute path, got ${shown(pidFile)}`);
      request.onChange.pid_file = pidFile;
    }
    if (processName !== undefined) {
      // The kernel keeps 15 characters of a process's name; a longer one would never match.
      if (!/^[^/\0\s]{1,15}$/.test(processName))
        fail(A('on-change-process'), `expected a process name of 1 to 15 characters, got ${shown(processName)}`);
      request.onChange.process_name = processName;
    }
  } else
    for (const name of ['on-change-pid-file', 'on-change-process'])
      if (all[A(name)] !== undefined) fail(A(name), `given without ${A('on-change-signal')}`);
  if (all[A('command')] !== undefined) request.command = stringArray(A('command'), all[A('command')]!);
  if (all[A('containers')] !== undefined) {
    request.containers = list(all[A('containers')]!);
    if (request.containers.length === 0) fail(A('containers'), 'expected a comma-separated list of container names');
  }

  if (items.size === 0)
    fail(
      A('secret-<name>'),
      `the pod is opted in (label ${A('inject')}) but names no secret: add ${A('secret-<name>')} or ${A('creds-<name>')}`,
    );
  const seen = { files: new Map<string, string>(), env: new Map<string, string>() };
  for (const [name, fields] of [...items].sort(([a], [b]) => a.localeCompare(b))) {
    const item = buildItem(name, fields, mode, seen);
    (item.env ? request.envItems : request.fileItems).push(item);
  }
  return request;
}

// A Mount request's parameters: the SecretProviderClass's `parameters` (the shape of Vault's provider, so a user
// renames `vaultAddress` to `cofreAddress` and keeps the rest) plus what the driver adds about the pod. Every mistake
// is refused with a message that names the parameter; no value is ever in one.
import yaml from 'js-yaml';

export class ParameterError extends Error {}

export type Encoding = 'utf-8' | 'base64' | 'hex';

export interface SecretObject {
  /** The file's name in the volume (and the object's id in the versions). */
  objectName: string;
  /** An API path as `cofre read` takes it: `secret/data/app/db` for KV v2, `database/creds/app`. */
  secretPath: string;
  /** One field of the answer's data; the whole data as JSON when absent. */
  secretKey?: string;
  /** Fields sent with method PUT/POST (e.g. to issue a certificate). */
  secretArgs?: Record<string, unknown>;
  method: 'GET' | 'PUT' | 'POST';
  /** Decimal mode bits (YAML 0600 is octal: 384). */
  filePermission?: number;
  /** How the value is stored in Cofre: decoded before it is written (Vault's provider: base64, hex, utf-8). */
  encoding: Encoding;
}

export interface MountParameters {
  roleName: string;
  cofreAddress?: string;
  authMountPath: string;
  audience?: string;
  caCert?: string;
  skipVerify: boolean;
  objects: SecretObject[];
  pod: { name: string; namespace: string; uid?: string; serviceAccount: string };
  /** The driver's service-account tokens by audience (CSIDriver tokenRequests), when it sends any. */
  tokens: Record<string, { token: string; expirationTimestamp?: string }>;
}

const OBJECT_FIELDS = [
  'objectName',
  'secretPath',
  'secretKey',
  'secretArgs',
  'method',
  'filePermission',
  'encoding',
] as const;
const NAME = /^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/;

function fail(what: string, message: string): never {
  throw new ParameterError(`${what}: ${message}`);
}

function str(attrs: Record<string, unknown>, key: string, required: true): string;
function str(attrs: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(attrs: Record<string, unknown>, key: string, required = false): string | undefined {
  const value = attrs[key];
  if (value === undefined || value === '') {
    if (required) fail(key, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') fail(key, 'must be a string');
  return value;
}

function parseObject(raw: unknown, i: number): SecretObject {
  const where = `objects[${i}]`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(where, 'must be a mapping');
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o))
    if (!(OBJECT_FIELDS as readonly string[]).includes(key))
      fail(where, `unknown field "${key}" (known: ${OBJECT_FIELDS.join(', ')})`);
  const objectName = str(o, 'objectName', true);
  if (!NAME.test(objectName) || objectName.split('/').some((s) => s === '..' || s === '.' || s === ''))
    fail(`${where}.objectName`, `"${objectName}" must be a relative path without "." or ".." segments`);
  const secretPath = str(o, 'secretPath', true).replace(/^\/+/, '').replace(/^v1\//, '');
  const method = (str(o, 'method') ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'PUT' && method !== 'POST')
    fail(`${where}.method`, `expected GET, PUT or POST, got "${method}"`);
  const encoding = (str(o, 'encoding') ?? 'utf-8').toLowerCase();
  if (encoding !== 'utf-8' && encoding !== 'base64' && encoding !== 'hex')
    fail(`${where}.encoding`, `expected utf-8, base64 or hex, got "${encoding}"`);
  let filePermission: number | undefined;
  if (o.filePermission !== undefined) {
    const p = o.filePermission;
    // YAML reads 0600 as octal; a quoted "0600" is taken as octal too.
    filePermission = typeof p === 'string' && /^0?[0-7]{3}$/.test(p) ? parseInt(p, 8) : (p as number);
    if (
      typeof filePermission !== 'number' ||
      !Number.isInteger(filePermission) ||
      filePermission < 0 ||
      filePermission > 0o777
    )
      fail(`${where}.filePermission`, 'expected a file mode such as 0600');
  }
  const secretArgs = o.secretArgs;
  if (secretArgs !== undefined && (secretArgs === null || typeof secretArgs !== 'object' || Array.isArray(secretArgs)))
    fail(`${where}.secretArgs`, 'must be a mapping');
  return {
    objectName,
    secretPath,
    ...(o.secretKey !== undefined ? { secretKey: str(o, 'secretKey', true) } : {}),
    ...(secretArgs ? { secretArgs: secretArgs as Record<string, unknown> } : {}),
    method,
    ...(filePermission !== undefined ? { filePermission } : {}),
    encoding,
  };
}

export function parseMountParameters(attributesJson: string): MountParameters {
  let attrs: Record<string, unknown>;
  try {
    attrs = JSON.parse(attributesJson) as Record<string, unknown>;
  } catch {
    fail('attributes', 'are not JSON');
  }
  if (attrs === null || typeof attrs !== 'object') fail('attributes', 'must be a JSON object');
  let objects: unknown;
  try {
    // Vault's provider reads `objects` as YAML 1.1, where `filePermission: 0600` is octal; js-yaml reads YAML 1.2,
    // where it would be 600. So a file mode with a leading 0 is written the 1.2 way (0o600) first.
    const text = str(attrs, 'objects', true).replace(
      /^(\s*-?\s*filePermission:\s*)0([0-7]+)\s*$/gm,
      (_, key: string, digits: string) => `${key}0o${digits}`,
    );
    objects = yaml.load(text);
  } catch (err) {
    fail('objects', `is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray(objects) || objects.length === 0) fail('objects', 'must be a non-empty YAML list');
  const parsed = objects.map(parseObject);
  const names = new Set<string>();
  for (const o of parsed) {
    if (names.has(o.objectName)) fail('objects', `objectName "${o.objectName}" is used twice`);
    names.add(o.objectName);
  }
  let tokens: MountParameters['tokens'] = {};
  const rawTokens = str(attrs, 'csi.storage.k8s.io/serviceAccount.tokens');
  if (rawTokens) {
    try {
      tokens = JSON.parse(rawTokens) as MountParameters['tokens'];
    } catch {
      fail('csi.storage.k8s.io/serviceAccount.tokens', 'is not JSON');
    }
  }
  const skip = str(attrs, 'cofreSkipTLSVerify') ?? str(attrs, 'vaultSkipTLSVerify');
  const cofreAddress = str(attrs, 'cofreAddress') ?? str(attrs, 'vaultAddress');
  const audience = str(attrs, 'audience');
  const caCert = str(attrs, 'cofreCACertPath') ?? str(attrs, 'vaultCACertPath');
  const uid = str(attrs, 'csi.storage.k8s.io/pod.uid');
  return {
    roleName: str(attrs, 'roleName', true),
    ...(cofreAddress ? { cofreAddress } : {}),
    authMountPath: (str(attrs, 'authMountPath') ?? str(attrs, 'vaultAuthMountPath') ?? 'kubernetes')
      .replace(/^\/+|\/+$/g, '')
      .replace(/^auth\//, ''),
    ...(audience ? { audience } : {}),
    ...(caCert ? { caCert } : {}),
    skipVerify: skip === 'true',
    objects: parsed,
    pod: {
      name: str(attrs, 'csi.storage.k8s.io/pod.name', true),
      namespace: str(attrs, 'csi.storage.k8s.io/pod.namespace', true),
      ...(uid ? { uid } : {}),
      serviceAccount: str(attrs, 'csi.storage.k8s.io/serviceAccount.name', true),
    },
    tokens,
  };
}

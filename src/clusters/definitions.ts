import { badRequest } from '../core/errors.js';
import { isDnsLabel, isDnsSubdomain, parseLabels } from './labels.js';
import { DEFAULT_GRACE_SECONDS } from '../core/lease-timing.js';

/** Where a secret item's values come from: keys of one KV secret (all of them when `keys` is absent). */
export interface KvSource {
  mount: string;
  path: string;
  keys?: string[];
}

/**
 * How an item reaches the pods: a Secret, a ConfigMap, or (for secret values) environment variables or in-memory
 * files. The last two need the in-pod delivery of the injector, which has not landed: until it does, the agent
 * writes them as a Secret and says so in its report (src/kube/cluster-agent/agent.ts).
 */
export type DeliveryMode = 'secret' | 'configmap' | 'env' | 'file';
export const DELIVERY_MODES: readonly DeliveryMode[] = ['secret', 'configmap', 'env', 'file'];

/**
 * A dynamic database role (`<mount>/creds/<role>`): each cluster gets a credential of its own, whose fields
 * (`username`, `password`; all of them when `keys` is absent) are the Secret's keys.
 */
export interface DatabaseSource {
  mount: string;
  role: string;
  keys?: string[];
}

/** The fields of a database credential, what `keys` may name. */
export const DATABASE_CREDENTIAL_KEYS = ['username', 'password'];

/** How long a replaced database credential stays valid when the agent does not report the new revision first. */
export const DEFAULT_GRACE_PERIOD = DEFAULT_GRACE_SECONDS;
export const MAX_GRACE_PERIOD = 7 * 24 * 3600;

export interface DeliveryItem {
  /** The Kubernetes object's name. */
  name: string;
  mode: DeliveryMode;
  type?: string;
  immutable?: boolean;
  kv?: KvSource;
  database?: DatabaseSource;
  /** Non-secret configuration only: refused in a secret item. */
  literal?: Record<string, string>;
}

export interface RolloutTarget {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  name: string;
}

export interface DeliveryDefinition {
  namespace: string;
  items: DeliveryItem[];
  rollout: RolloutTarget[];
  /** Seconds a replaced database credential stays valid at most, waiting for the agent's report (see above). */
  gracePeriod?: number;
}

export interface PlacementDefinition {
  delivery: string;
  selector?: { matchLabels: Record<string, string> };
  clusters: string[];
}

/** The Kubernetes kind an item is written as: everything but a configmap item is a Secret. */
export function objectKind(mode: DeliveryMode): 'Secret' | 'ConfigMap' {
  return mode === 'configmap' ? 'ConfigMap' : 'Secret';
}

const ROLLOUT_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'];
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;

/** Cluster, delivery and placement names: DNS labels, so they fit in Kubernetes labels and storage keys alike. */
export function checkName(name: string, what: string): string {
  if (!isDnsLabel(name)) {
    throw badRequest(`invalid ${what} name "${name}": at most 63 lower-case alphanumeric characters or "-"`);
  }
  return name;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Why Kubernetes would refuse `key` as a key of a Secret's or ConfigMap's data, or undefined when it would not. */
export function dataKeyProblem(key: string): string | undefined {
  if (key.length > 253 || !DATA_KEY.test(key)) return 'at most 253 alphanumeric characters, "-", "_" or "."';
  if (key === '.' || key === '..') return 'not "." or ".."';
  return undefined;
}

function checkDataKey(key: string, where: string): void {
  const problem = dataKeyProblem(key);
  if (problem) throw badRequest(`invalid data key "${key}" in ${where}: ${problem}`);
}

function parseItem(raw: unknown, index: number): DeliveryItem {
  const where = `items[${index}]`;
  if (!isObject(raw)) throw badRequest(`${where} must be an object`);
  const known = ['name', 'mode', 'type', 'immutable', 'kv', 'database', 'literal'];
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw badRequest(`unknown fields in ${where}: ${unknown.sort().join(', ')}`);
  const { name, mode } = raw;
  if (typeof name !== 'string' || !isDnsSubdomain(name)) {
    throw badRequest(`${where}.name must be a Kubernetes object name (a DNS subdomain)`);
  }
  if (typeof mode !== 'string' || !(DELIVERY_MODES as readonly string[]).includes(mode)) {
    throw badRequest(`${where}.mode must be "secret", "configmap", "env" or "file"`);
  }
  const item: DeliveryItem = { name, mode: mode as DeliveryMode };
  if (raw.type !== undefined) {
    if (mode !== 'secret' || typeof raw.type !== 'string' || raw.type === '') {
      throw badRequest(`${where}.type is a non-empty string, for secret items only`);
    }
    item.type = raw.type;
  }
  if (raw.immutable !== undefined) {
    if (typeof raw.immutable !== 'boolean') throw badRequest(`${where}.immutable must be a boolean`);
    item.immutable = raw.immutable;
  }
  const sources = [raw.kv, raw.database, raw.literal].filter((s) => s !== undefined).length;
  if (sources !== 1) throw badRequest(`${where} needs exactly one source: "kv", "database" or "literal"`);
  if (raw.database !== undefined) {
    item.database = parseDatabaseSource(raw.database, mode, where);
  } else if (raw.kv !== undefined) {
    const kv = raw.kv;
    if (!isObject(kv) || typeof kv.mount !== 'string' || typeof kv.path !== 'string') {
      throw badRequest(`${where}.kv must be {mount, path, keys?}`);
    }
    const mount = kv.mount.replace(/^\/+|\/+$/g, '');
    const path = kv.path.replace(/^\/+|\/+$/g, '');
    if (mount === '' || path === '') throw badRequest(`${where}.kv needs a non-empty mount and path`);
    item.kv = { mount, path };
    if (kv.keys !== undefined) {
      if (!Array.isArray(kv.keys) || kv.keys.length === 0 || !kv.keys.every((k) => typeof k === 'string')) {
        throw badRequest(`${where}.kv.keys must be a non-empty list of strings`);
      }
      for (const key of kv.keys as string[]) checkDataKey(key, `${where}.kv.keys`);
      item.kv.keys = [...new Set(kv.keys as string[])];
    }
  } else {
    // A literal sits in the definition, which every reader of the delivery sees: secret values come from KV.
    if (mode !== 'configmap') {
      throw badRequest(
        `${where}: a literal source is for configmap items only; the values of a "${mode}" item come from "kv"`,
      );
    }
    if (!isObject(raw.literal) || Object.keys(raw.literal).length === 0) {
      throw badRequest(`${where}.literal must be a non-empty map of strings`);
    }
    for (const [key, value] of Object.entries(raw.literal)) {
      checkDataKey(key, `${where}.literal`);
      if (typeof value !== 'string') throw badRequest(`${where}.literal["${key}"] must be a string`);
    }
    // fromEntries defines own properties: a key such as "__proto__" stays a key.
    item.literal = Object.fromEntries(Object.entries(raw.literal as Record<string, string>));
  }
  return item;
}

function parseDatabaseSource(raw: unknown, mode: string, where: string): DatabaseSource {
  // A credential is a secret: it never goes into a ConfigMap.
  if (mode !== 'secret') throw badRequest(`${where}: a database source is for secret items only`);
  if (!isObject(raw) || typeof raw.mount !== 'string' || typeof raw.role !== 'string') {
    throw badRequest(`${where}.database must be {mount, role, keys?}`);
  }
  const unknown = Object.keys(raw).filter((k) => !['mount', 'role', 'keys'].includes(k));
  if (unknown.length > 0) throw badRequest(`unknown fields in ${where}.database: ${unknown.sort().join(', ')}`);
  const mount = raw.mount.replace(/^\/+|\/+$/g, '');
  if (mount === '' || raw.role === '' || raw.role.includes('/')) {
    throw badRequest(`${where}.database needs a non-empty mount and a role name without "/"`);
  }
  const source: DatabaseSource = { mount, role: raw.role };
  if (raw.keys !== undefined) {
    if (!Array.isArray(raw.keys) || raw.keys.length === 0 || !raw.keys.every((k) => typeof k === 'string')) {
      throw badRequest(`${where}.database.keys must be a non-empty list of strings`);
    }
    const keys = raw.keys as string[];
    const bad = keys.find((k) => !DATABASE_CREDENTIAL_KEYS.includes(k));
    if (bad !== undefined) {
      throw badRequest(
        `${where}.database.keys: "${bad}" is not a credential field (${DATABASE_CREDENTIAL_KEYS.join(', ')})`,
      );
    }
    source.keys = [...new Set(keys)];
  }
  return source;
}

/** The grace period of a delivery's replaced database credentials, in seconds (a duration field, parsed). */
function parseGracePeriod(value: unknown): number | undefined {
  if (value === undefined || value === 0) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_GRACE_PERIOD) {
    throw badRequest(`"grace_period" must be between 1s and ${MAX_GRACE_PERIOD / 3600}h`);
  }
  return value;
}

export function parseDelivery(data: Record<string, unknown>): DeliveryDefinition {
  const namespace = data.namespace;
  if (typeof namespace !== 'string' || !isDnsLabel(namespace)) {
    throw badRequest('"namespace" must be a Kubernetes namespace name (a DNS label)');
  }
  if (!Array.isArray(data.items) || data.items.length === 0) throw badRequest('"items" must be a non-empty list');
  const items = data.items.map(parseItem);
  const seen = new Set<string>();
  for (const item of items) {
    // env and file items are Secrets in the cluster too: they share the Secrets' names.
    const kind = objectKind(item.mode);
    if (seen.has(`${kind}/${item.name}`)) throw badRequest(`two items name the same ${kind} "${item.name}"`);
    seen.add(`${kind}/${item.name}`);
  }
  const rolloutRaw = data.rollout ?? [];
  if (!Array.isArray(rolloutRaw)) throw badRequest('"rollout" must be a list of {kind, name}');
  const rollout = rolloutRaw.map((raw: unknown, i): RolloutTarget => {
    if (!isObject(raw) || typeof raw.kind !== 'string' || !ROLLOUT_KINDS.includes(raw.kind)) {
      throw badRequest(`rollout[${i}].kind must be one of ${ROLLOUT_KINDS.join(', ')}`);
    }
    if (typeof raw.name !== 'string' || !isDnsSubdomain(raw.name)) {
      throw badRequest(`rollout[${i}].name must be a Kubernetes object name`);
    }
    return { kind: raw.kind as RolloutTarget['kind'], name: raw.name };
  });
  const gracePeriod = parseGracePeriod(data.grace_period);
  return { namespace, items, rollout, ...(gracePeriod !== undefined ? { gracePeriod } : {}) };
}

export function parsePlacement(data: Record<string, unknown>): PlacementDefinition {
  if (typeof data.delivery !== 'string') throw badRequest('missing required field "delivery"');
  const delivery = checkName(data.delivery, 'delivery');
  const clusters = ((data.clusters as string[] | undefined) ?? []).map((c) => checkName(c, 'cluster'));
  let selector: PlacementDefinition['selector'];
  if (data.selector !== undefined) {
    const raw = data.selector;
    if (!isObject(raw) || Object.keys(raw).some((k) => k !== 'matchLabels')) {
      throw badRequest('"selector" must be {matchLabels: {key: value}}');
    }
    selector = { matchLabels: parseLabels(raw.matchLabels ?? {}, 'selector.matchLabels') };
  }
  if (!selector && clusters.length === 0) throw badRequest('a placement needs a "selector" and/or "clusters"');
  return { delivery, ...(selector ? { selector } : {}), clusters: [...new Set(clusters)].sort() };
}

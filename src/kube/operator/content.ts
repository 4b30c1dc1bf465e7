// What the target object should hold, and its content hash. The hash is an HMAC-SHA256 keyed by the CofreSecret's
// uid: it changes whenever the content does (status, rollouts and "nothing to write" checks use it), and two
// CofreSecrets of the same content hash differently. The uid is no secret (it is in the same object's metadata),
// so a reader of the status or of a rolled pod template can confirm a guessed value offline: SECURITY.md's known
// limits. A key of the operator's own would need a migration that rolls no workload whose content is unchanged.
import { createHmac } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { render, TemplateError } from './template.js';
import { ADOPT_ANNOTATION, API_VERSION, FIELD_MANAGER, WRITER_ANNOTATION, type CofreSecret } from './types.js';

export interface TargetContent {
  kind: 'Secret' | 'ConfigMap';
  /** Values in clear; base64 only when written into a Secret. */
  data: Record<string, string>;
  type?: string;
  immutable: boolean;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'cofre' };

/** A KV value as a string: strings as they are, anything else as JSON (as Vault's agent templates print maps). */
function asString(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function buildContent(cs: CofreSecret, source: Record<string, unknown>): TargetContent {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) flat[k] = asString(v);
  let data = flat;
  const templates = cs.spec.target.templates;
  if (templates && Object.keys(templates).length > 0) {
    data = {};
    for (const [key, tpl] of Object.entries(templates)) {
      try {
        data[key] = render(tpl, flat);
      } catch (err) {
        if (err instanceof TemplateError) throw new TemplateError(`template "${key}": ${err.message}`);
        throw err;
      }
    }
  }
  const kind = cs.spec.target.kind ?? 'Secret';
  return {
    kind,
    data,
    type: kind === 'Secret' ? (cs.spec.target.type ?? 'Opaque') : undefined,
    immutable: cs.spec.target.immutable === true,
    labels: { ...(cs.spec.target.labels ?? {}), ...MANAGED_BY },
    annotations: { ...(cs.spec.target.annotations ?? {}) },
  };
}

/** JSON with object keys sorted: equal values give equal strings, whatever order their keys came in. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function contentHash(content: TargetContent, key: string): string {
  return 'hmac-sha256:' + createHmac('sha256', key).update(canonical(content)).digest('hex');
}

/** The object to server-side apply. An owner reference only under deletionPolicy Delete: Kubernetes' garbage
 * collector then deletes the target with its CofreSecret; under Retain the (now absent) field is dropped by apply. */
export function targetObject(cs: CofreSecret, content: TargetContent): KubernetesObject & Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    name: cs.spec.target.name,
    namespace: cs.metadata!.namespace,
    labels: content.labels,
    annotations: { ...content.annotations, [WRITER_ANNOTATION]: cs.metadata!.uid },
  };
  if ((cs.spec.deletionPolicy ?? 'Delete') === 'Delete') {
    metadata.ownerReferences = [
      {
        apiVersion: API_VERSION,
        kind: 'CofreSecret',
        name: cs.metadata!.name,
        uid: cs.metadata!.uid,
        controller: true,
      },
    ];
  }
  const obj: KubernetesObject & Record<string, unknown> = { apiVersion: 'v1', kind: content.kind, metadata };
  if (content.kind === 'Secret') {
    obj.type = content.type;
    obj.data = Object.fromEntries(
      Object.entries(content.data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
    );
  } else {
    obj.data = content.data;
  }
  if (content.immutable) obj.immutable = true;
  return obj;
}

/** What writtenBy reads of an existing target. */
export interface TargetMetadata {
  metadata?: {
    annotations?: Record<string, string>;
    managedFields?: { manager?: string; operation?: string }[];
  };
}

/**
 * Whether this CofreSecret may write `existing`: it says this CofreSecret wrote it (WRITER_ANNOTATION); or, with no
 * writer named, a user handed it over (ADOPT_ANNOTATION), or it was written before targets named their writer: the
 * operator applied it, and it holds what this CofreSecret last wrote (`holdsLastSync`: its content hash, keyed by
 * this CofreSecret's uid, is the one in its status; another CofreSecret's target hashes differently). Its owner
 * reference, under deletionPolicy Delete, is checked by the caller.
 */
export function writtenBy(existing: TargetMetadata, cs: CofreSecret, holdsLastSync: () => boolean): boolean {
  const annotations = existing.metadata?.annotations ?? {};
  const writer = annotations[WRITER_ANNOTATION];
  if (writer !== undefined) return writer === cs.metadata!.uid;
  if (annotations[ADOPT_ANNOTATION] === 'true') return true;
  const applied = (existing.metadata?.managedFields ?? []).some(
    (m) => m.manager === FIELD_MANAGER && m.operation === 'Apply',
  );
  return applied && holdsLastSync();
}

/** What the target should look like, without its data: the lens through which an existing target is compared. */
export function targetShape(cs: CofreSecret): TargetContent {
  const target = { ...cs.spec.target, templates: undefined };
  return buildContent({ ...cs, spec: { ...cs.spec, target } }, {});
}

/** The content an existing target holds, seen through the same lens (only our labels and annotations count). */
export function existingContent(
  obj: {
    data?: Record<string, string>;
    type?: string;
    immutable?: boolean;
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  },
  want: TargetContent,
): TargetContent {
  const raw = obj.data ?? {};
  const data =
    want.kind === 'Secret'
      ? Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
      : { ...raw };
  const pick = (from: Record<string, string> | undefined, keys: string[]) =>
    Object.fromEntries(keys.filter((k) => from && k in from).map((k) => [k, from![k]!]));
  return {
    kind: want.kind,
    data,
    type: want.kind === 'Secret' ? obj.type : undefined,
    immutable: obj.immutable === true,
    labels: pick(obj.metadata?.labels, Object.keys(want.labels)),
    annotations: pick(obj.metadata?.annotations, Object.keys(want.annotations)),
  };
}

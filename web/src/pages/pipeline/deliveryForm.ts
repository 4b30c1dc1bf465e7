/**
 * The delivery editor's form state and its conversion to and from the server's definition (docs/multi-cluster.md,
 * "deliveries/:name"). Only shapes are converted here: what is valid is the server's to say.
 */
import type { Json } from '../../api';
import { parseLabelText } from '../../pipeline';

export type Mode = 'secret' | 'configmap' | 'env' | 'file';
export type SourceKind = 'kv' | 'database' | 'literal';

export const MODES: { value: Mode; label: string }[] = [
  { value: 'secret', label: 'Kubernetes Secret' },
  { value: 'env', label: 'Environment variables (in the pod)' },
  { value: 'file', label: 'In-memory files (in the pod)' },
  { value: 'configmap', label: 'ConfigMap (not secret)' },
];

/** The sources the server accepts for each mode: database credentials go to Secrets, literals to ConfigMaps. */
export const SOURCES_FOR: Record<Mode, { value: SourceKind; label: string }[]> = {
  secret: [
    { value: 'kv', label: 'KV secret' },
    { value: 'database', label: 'Database credentials (one per cluster)' },
  ],
  env: [{ value: 'kv', label: 'KV secret' }],
  file: [{ value: 'kv', label: 'KV secret' }],
  configmap: [
    { value: 'literal', label: 'Literal values (in the definition)' },
    { value: 'kv', label: 'KV secret' },
  ],
};

export interface ItemDraft {
  name: string;
  mode: Mode;
  source: SourceKind;
  mount: string;
  path: string;
  role: string;
  /** Comma-separated; empty means every key. */
  keys: string;
  /** KEY=VALUE, one per line or comma-separated (non-secret configuration). */
  literal: string;
  type: string;
  immutable: boolean;
}

export interface RolloutDraft {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  name: string;
}

export interface DeliveryDraft {
  namespace: string;
  items: ItemDraft[];
  rollout: RolloutDraft[];
  gracePeriod: string;
}

export const newItem = (mode: Mode = 'secret'): ItemDraft => ({
  name: '',
  mode,
  source: SOURCES_FOR[mode][0]!.value,
  mount: mode === 'configmap' ? '' : 'secret',
  path: '',
  role: '',
  keys: '',
  literal: '',
  type: '',
  immutable: false,
});

export const emptyDraft = (): DeliveryDraft => ({ namespace: '', items: [newItem()], rollout: [], gracePeriod: '' });

const keyList = (text: string): string[] | undefined => {
  const keys = text
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  return keys.length > 0 ? keys : undefined;
};

/** The body of a delivery write (or preview). */
export function toDefinition(draft: DeliveryDraft): Json {
  const items = draft.items.map((item) => {
    const out: Json = { name: item.name.trim(), mode: item.mode };
    if (item.mode === 'secret' && item.type.trim() !== '') out.type = item.type.trim();
    if (item.immutable) out.immutable = true;
    const keys = keyList(item.keys);
    if (item.source === 'kv') out.kv = { mount: item.mount.trim(), path: item.path.trim(), ...(keys ? { keys } : {}) };
    else if (item.source === 'database')
      out.database = { mount: item.mount.trim(), role: item.role.trim(), ...(keys ? { keys } : {}) };
    else out.literal = parseLabelText(item.literal).labels;
    return out;
  });
  return {
    namespace: draft.namespace.trim(),
    items,
    rollout: draft.rollout.map((r) => ({ kind: r.kind, name: r.name.trim() })),
    ...(draft.gracePeriod.trim() !== '' ? { grace_period: draft.gracePeriod.trim() } : {}),
  };
}

/** The form for a definition the server read back. */
export function fromDefinition(data: Json): DeliveryDraft {
  const items: ItemDraft[] = (data.items ?? []).map((raw: Json) => {
    const item = newItem(raw.mode as Mode);
    item.name = raw.name ?? '';
    item.type = raw.type ?? '';
    item.immutable = raw.immutable === true;
    if (raw.kv)
      Object.assign(item, {
        source: 'kv',
        mount: raw.kv.mount,
        path: raw.kv.path,
        keys: (raw.kv.keys ?? []).join(', '),
      });
    else if (raw.database) {
      Object.assign(item, {
        source: 'database',
        mount: raw.database.mount,
        role: raw.database.role,
        keys: (raw.database.keys ?? []).join(', '),
      });
    } else {
      const literal = Object.entries((raw.literal ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
      Object.assign(item, { source: 'literal', literal: literal.join('\n') });
    }
    return item;
  });
  return {
    namespace: data.namespace ?? '',
    items,
    rollout: (data.rollout ?? []).map((r: Json) => ({ kind: r.kind, name: r.name })),
    // Kept as read (seconds), so saving the form leaves it as it was.
    gracePeriod: data.grace_period !== undefined ? `${Number(data.grace_period)}s` : '',
  };
}

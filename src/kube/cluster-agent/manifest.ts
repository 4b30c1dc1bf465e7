// What the cluster agent writes for one object of a payload and what it patches into a rollout target, as plain
// data: apply.ts sends these to the API server, and the server's delivery preview (src/clusters/preview.ts) shows
// them without values, so the preview cannot drift from what an agent writes.
import { deliveryLabels, REQUESTED_MODE_ANNOTATION, REVISION_ANNOTATION } from './labels.js';
import type { DeliveryPayload, PayloadObject } from './payload.js';

/** A Secret or ConfigMap as the agent server-side applies it. */
export interface DesiredObject {
  apiVersion: 'v1';
  kind: PayloadObject['kind'];
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    resourceVersion?: string;
  };
  type?: string;
  immutable?: boolean;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** A ConfigMap holds text in `data` and anything that is not UTF-8 in `binaryData` (base64). */
function configMapData(data: Record<string, string>): {
  data: Record<string, string>;
  binaryData: Record<string, string>;
} {
  const out = { data: {} as Record<string, string>, binaryData: {} as Record<string, string> };
  for (const [k, v] of Object.entries(data)) {
    const bytes = Buffer.from(v, 'base64');
    const text = bytes.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(bytes)) out.data[k] = text;
    else out.binaryData[k] = v;
  }
  return out;
}

/** The object the agent applies for one payload object at one revision of a delivery. */
export function desiredObject(
  obj: PayloadObject,
  delivery: string,
  namespace: string,
  revision: number,
): DesiredObject {
  const want: DesiredObject = {
    apiVersion: 'v1',
    kind: obj.kind,
    metadata: {
      name: obj.name,
      namespace,
      labels: deliveryLabels(delivery),
      annotations: {
        [REVISION_ANNOTATION]: String(revision),
        ...(obj.mode ? { [REQUESTED_MODE_ANNOTATION]: obj.mode } : {}),
      },
    },
  };
  if (obj.kind === 'Secret') {
    want.type = obj.type ?? 'Opaque';
    want.data = obj.data;
  } else {
    const { data, binaryData } = configMapData(obj.data);
    want.data = data;
    if (Object.keys(binaryData).length > 0) want.binaryData = binaryData;
  }
  if (obj.immutable) want.immutable = true;
  return want;
}

/** The merge patch that rolls a workload to a revision: its pod template's annotation, which every new pod gets. */
export function rolloutPatch(revision: number): {
  spec: { template: { metadata: { annotations: Record<string, string> } } };
} {
  return { spec: { template: { metadata: { annotations: { [REVISION_ANNOTATION]: String(revision) } } } } };
}

const IN_POD_WORDS = { env: 'environment variables', file: 'in-memory files' } as const;

/**
 * One note per Secret whose values were asked for as environment variables or in-memory files: those need the
 * in-pod delivery of the injector, which this agent does not have, so they were written as a Secret. Names only.
 */
export function inPodNotes(namespace: string, payload: DeliveryPayload): string[] {
  return payload.objects
    .filter((o) => o.mode)
    .map(
      (o) =>
        `Secret ${namespace}/${o.name} was asked for as ${IN_POD_WORDS[o.mode!]}; written as a Secret because ` +
        `in-pod delivery is not available`,
    );
}

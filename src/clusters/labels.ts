import { badRequest } from '../core/errors.js';

/**
 * Kubernetes label syntax, as the API server checks it (IsQualifiedName, IsValidLabelValue): a cluster's labels
 * and a placement's selector are refused with a 400 naming the bad key or value, never stored half-valid.
 */
const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return 'its prefix must be a DNS subdomain';
  if (name.length > 63 || !NAME.test(name)) {
    return 'its name must be at most 63 alphanumeric characters, "-", "_" or ".", starting and ending alphanumeric';
  }
  return undefined;
}

/** A map of labels from a request field, checked key by key. */
export function parseLabels(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`"${field}" must be a map of labels`);
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) throw badRequest(`invalid label key "${key}" in "${field}": ${keyProblem}`);
    if (typeof raw !== 'string') throw badRequest(`the value of label "${key}" in "${field}" must be a string`);
    if (raw !== '' && (raw.length > 63 || !NAME.test(raw))) {
      throw badRequest(
        `invalid value "${raw}" of label "${key}" in "${field}": at most 63 alphanumeric characters, "-", "_" or ".", starting and ending alphanumeric`,
      );
    }
    out[key] = raw;
  }
  return out;
}

/** matchLabels: every label of the selector, with the same value. An empty selector matches every cluster. */
export function selects(matchLabels: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(matchLabels).every(([key, value]) => Object.hasOwn(labels, key) && labels[key] === value);
}

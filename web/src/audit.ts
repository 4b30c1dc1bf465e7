/**
 * Audit entries as the audit page shows them: a request's two lines (request and response, paired by request id)
 * as one row of what happened. Only names are shown, never a value: request and response data are HMAC'd on disk
 * anyway, and the page lists their field names alone.
 */
import type { Json } from './api';

export interface AuditRow {
  id: string;
  time: string;
  operation: string;
  path: string;
  /** The response's status; undefined while only the request is on record (or its response is older). */
  status: number | undefined;
  error: string;
  who: string;
  policies: string[];
  remoteAddress: string;
  /** The request's field names (their values are HMAC'd, and not shown). */
  fields: string[];
}

/** Pairs request and response lines by request id, newest first (entries come newest first). */
export function auditRows(entries: Json[]): AuditRow[] {
  const rows = new Map<string, AuditRow>();
  for (const e of entries) {
    const id = String(e?.request?.id ?? '');
    if (!id) continue;
    const data = e?.request?.data;
    const row = rows.get(id) ?? {
      id,
      time: String(e?.time ?? ''),
      operation: String(e?.request?.operation ?? ''),
      path: String(e?.request?.path ?? ''),
      status: undefined,
      error: '',
      who: String(e?.auth?.display_name ?? ''),
      policies: Array.isArray(e?.auth?.policies) ? e.auth.policies.map(String) : [],
      remoteAddress: String(e?.request?.remote_address ?? ''),
      fields: data && typeof data === 'object' && !Array.isArray(data) ? Object.keys(data) : [],
    };
    if (e?.type === 'response') {
      row.status = Number(e?.response?.status ?? 0) || undefined;
      row.error = String(e?.error ?? '');
    } else {
      // The request's own line tells when it arrived.
      row.time = String(e?.time ?? row.time);
    }
    rows.set(id, row);
  }
  return [...rows.values()];
}

export interface AuditFilter {
  path: string;
  operation: string;
  /** "", "ok" (2xx and 3xx), "refused" (4xx), "failed" (5xx), "pending" (no response yet). */
  status: string;
}

export function matches(row: AuditRow, filter: AuditFilter): boolean {
  if (filter.path && !row.path.includes(filter.path.trim())) return false;
  if (filter.operation && row.operation !== filter.operation) return false;
  const s = row.status;
  switch (filter.status) {
    case 'ok':
      return s !== undefined && s < 400;
    case 'refused':
      return s !== undefined && s >= 400 && s < 500;
    case 'failed':
      return s !== undefined && s >= 500;
    case 'pending':
      return s === undefined;
    default:
      return true;
  }
}

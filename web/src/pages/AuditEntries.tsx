import { useState } from 'react';
import { call } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import { useAsync } from '../components/useAsync';
import { auditRows, matches, type AuditFilter } from '../audit';

const OPERATIONS = ['create', 'read', 'update', 'patch', 'delete', 'list'];
const LIMITS = ['100', '250', '500'];

/** A file device's last entries (sys/cofre/audit-log/<device>), one row per request, filtered here. */
export function AuditEntries(props: { device: string }) {
  const [limit, setLimit] = useState('100');
  const entries = useAsync(
    async () =>
      (await call('GET', `sys/cofre/audit-log/${props.device.replace(/\/$/, '')}`, { query: { limit } }))?.data ?? {},
    [props.device, limit],
  );
  const [filter, setFilter] = useState<AuditFilter>({ path: '', operation: '', status: '' });
  const read: unknown[] = Array.isArray(entries.data?.entries) ? entries.data.entries : [];
  const rows = auditRows(read);
  const shown = rows.filter((r) => matches(r, filter));
  const set = (key: keyof AuditFilter, value: string): void => setFilter((f) => ({ ...f, [key]: value }));

  return (
    <section aria-labelledby="entries-title">
      <h2 id="entries-title">Recent requests on {props.device}</h2>
      <p className="hint">
        Read back from the device’s file on this server, newest first. Tokens, accessors and every value are HMAC’d in
        the log; this page shows paths, operations, statuses and field names only (sys/audit-hash finds a value you
        know).
      </p>
      <form className="inline filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter the requests">
        <label>
          Path contains
          <input value={filter.path} onChange={(e) => set('path', e.target.value)} placeholder="secret/data/" />
        </label>
        <label>
          Operation
          <select value={filter.operation} onChange={(e) => set('operation', e.target.value)}>
            <option value="">any</option>
            {OPERATIONS.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={filter.status} onChange={(e) => set('status', e.target.value)}>
            <option value="">any</option>
            <option value="ok">succeeded (below 400)</option>
            <option value="refused">refused (4xx)</option>
            <option value="failed">failed (5xx)</option>
            <option value="pending">no response on record</option>
          </select>
        </label>
        <label>
          Entries to read
          <select value={limit} onChange={(e) => setLimit(e.target.value)}>
            {LIMITS.map((l) => (
              <option key={l}>{l}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => void entries.reload()}>
          Refresh
        </button>
      </form>
      <ErrorNotice error={entries.error} title="The entries could not be read back" />
      {entries.loading && !entries.data ? <p role="status">Loading…</p> : null}
      {entries.data?.truncated ? (
        <p className="hint">Only the last MiB of the file was read: older entries are in the file itself.</p>
      ) : null}
      {entries.data ? (
        <table className="audit">
          <caption>
            {shown.length} of {rows.length} requests, from the last {read.length} entries of the log
          </caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Operation</th>
              <th scope="col">Path</th>
              <th scope="col">Status</th>
              <th scope="col">Who</th>
              <th scope="col">Fields</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.id}>
                <td className="when">{r.time ? new Date(r.time).toLocaleString() : ''}</td>
                <td>{r.operation}</td>
                <td>
                  <code>{r.path}</code>
                  {r.error ? <div className="error-text">{r.error}</div> : null}
                </td>
                <td>{r.status ?? '—'}</td>
                <td>
                  {r.who || '—'}
                  {r.remoteAddress ? <div className="hint">{r.remoteAddress}</div> : null}
                </td>
                <td>{r.fields.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

import { useState } from 'react';
import { call } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import { useAsync } from '../components/useAsync';
import { AuditEntries } from './AuditEntries';
import '../ops.css';

interface Device {
  path: string;
  type: string;
  description: string;
  options: Record<string, string>;
}

/** A device whose entries this server can read back: a file device writing to a file. */
const readable = (d: Device): boolean => d.type === 'file' && (d.options.file_path ?? d.options.path) !== 'stdout';

/** Where a device's entries go, for the devices that cannot be read back here. */
function destination(d: Device): string {
  if (d.type === 'file') return 'the server’s standard output (its process log)';
  if (d.type === 'socket') return `the collector at ${d.options.address ?? 'its address'}`;
  return `wherever the ${d.type} device sends them`;
}

/**
 * The audit view, for administrators (sys/audit and sys/cofre/audit-log need sudo): the enabled devices, and the
 * recent requests of a file device read back, with filters. Every value in an entry is HMAC'd on disk; the page
 * shows names, paths and statuses only.
 */
export function Audit() {
  const devices = useAsync(async (): Promise<Device[]> => {
    const res = await call('GET', 'sys/audit');
    const table = (res?.data ?? {}) as Record<string, Record<string, unknown>>;
    return Object.entries(table).map(([path, d]) => ({
      path,
      type: String(d?.type ?? ''),
      description: String(d?.description ?? ''),
      options: (d?.options ?? {}) as Record<string, string>,
    }));
  }, []);
  const [chosen, setChosen] = useState<string>();
  const all = devices.data ?? [];
  const current = all.find((d) => d.path === chosen) ?? all.find(readable);

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Audit
      </h1>
      <ErrorNotice error={devices.error} title="The audit devices could not be listed" />
      {devices.error ? (
        <p className="hint">
          The audit view is for administrators: it needs sudo on sys/audit and sys/cofre/audit-log.
        </p>
      ) : null}
      {devices.loading && !devices.data ? <p role="status">Loading…</p> : null}
      {devices.data && all.length === 0 ? (
        <p>
          No audit device is enabled, so no request is on record. Enable one with{' '}
          <code>cofre audit enable file file_path=/var/log/cofre/audit.log</code>.
        </p>
      ) : null}
      {all.length > 0 ? (
        <table>
          <caption>Audit devices</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Type</th>
              <th scope="col">Writes to</th>
              <th scope="col">Entries</th>
            </tr>
          </thead>
          <tbody>
            {all.map((d) => (
              <tr key={d.path} aria-current={d === current ? 'true' : undefined}>
                <th scope="row">{d.path}</th>
                <td>{d.type}</td>
                <td>
                  <code>{d.options.file_path ?? d.options.path ?? d.options.address ?? ''}</code>
                  {d.description ? <span className="hint"> — {d.description}</span> : null}
                </td>
                <td>
                  {readable(d) ? (
                    <button type="button" aria-pressed={d === current} onClick={() => setChosen(d.path)}>
                      Show entries<span className="sr-only"> of {d.path}</span>
                    </button>
                  ) : (
                    <span>Cannot be read back here: they go to {destination(d)}.</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {devices.data && all.length > 0 && !current ? (
        <p>
          No device here keeps its entries where the server can read them back (only a file device writing to a file
          can). Read them where the devices send them.
        </p>
      ) : null}
      {current && readable(current) ? <AuditEntries key={current.path} device={current.path} /> : null}
    </section>
  );
}

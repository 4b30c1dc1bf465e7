import { useState, type FormEvent } from 'react';
import { call } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import { Link } from '../components/Link';
import { useAsync } from '../components/useAsync';
import { navigate } from '../router';

interface MountRow {
  path: string;
  type: string;
  version: string;
  description: string;
}

/** The KV mounts (sys/mounts); a token that may not list mounts can still open a mount by its path. */
export function Mounts() {
  const mounts = useAsync(async (): Promise<MountRow[]> => {
    const res = await call('GET', 'sys/mounts');
    const table = (res?.data ?? res ?? {}) as Record<string, Record<string, unknown>>;
    return Object.entries(table)
      .filter(([, m]) => m && (m.type === 'kv' || m.type === 'generic'))
      .map(([path, m]) => ({
        path: path.replace(/\/$/, ''),
        type: String(m.type),
        version: String((m.options as Record<string, unknown> | null)?.version ?? '1'),
        description: String(m.description ?? ''),
      }))
      .sort((a, b) => a.path.localeCompare(b.path));
  }, []);
  const [typed, setTyped] = useState('');
  const open = (e: FormEvent): void => {
    e.preventDefault();
    const mount = typed.trim().replace(/^\/+|\/+$/g, '');
    if (mount) navigate(['secrets', mount, '']);
  };

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Secrets
      </h1>
      <ErrorNotice error={mounts.error} title="The mounts could not be listed" />
      {mounts.loading && !mounts.data ? <p role="status">Loading mounts…</p> : null}
      {mounts.data ? (
        mounts.data.length === 0 ? (
          <p>No key/value mounts. Enable one with `cofre secrets enable -path=secret kv-v2`.</p>
        ) : (
          <table>
            <caption>Key/value mounts</caption>
            <thead>
              <tr>
                <th scope="col">Mount</th>
                <th scope="col">Engine</th>
                <th scope="col">Description</th>
              </tr>
            </thead>
            <tbody>
              {mounts.data.map((m) => (
                <tr key={m.path}>
                  <td>
                    <Link to={['secrets', m.path, '']}>{m.path}/</Link>
                  </td>
                  <td>KV v{m.version}</td>
                  <td>{m.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
      <form className="inline" onSubmit={open}>
        <label>
          Open a mount by path
          <input value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="secret" />
        </label>
        <button type="submit">Open</button>
      </form>
    </section>
  );
}

import { useState, type FormEvent } from 'react';
import { call } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import { Link } from '../components/Link';
import { useAsync } from '../components/useAsync';
import { navigate } from '../router';

/** The database mounts (sys/mounts); a token that may not list mounts can still open one by its path. */
export function DatabaseMounts() {
  const mounts = useAsync(async (): Promise<{ path: string; description: string }[]> => {
    const res = await call('GET', 'sys/mounts');
    const table = (res?.data ?? res ?? {}) as Record<string, Record<string, unknown>>;
    return Object.entries(table)
      .filter(([, m]) => m?.type === 'database')
      .map(([path, m]) => ({ path: path.replace(/\/$/, ''), description: String(m.description ?? '') }))
      .sort((a, b) => a.path.localeCompare(b.path));
  }, []);
  const [typed, setTyped] = useState('');
  const open = (e: FormEvent): void => {
    e.preventDefault();
    const mount = typed.trim().replace(/^\/+|\/+$/g, '');
    if (mount) navigate(['database', mount]);
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Databases
      </h1>
      <ErrorNotice error={mounts.error} title="The mounts could not be listed" />
      {mounts.loading && !mounts.data ? <p role="status">Loading mounts…</p> : null}
      {mounts.data ? (
        mounts.data.length === 0 ? (
          <p>No database mounts. Enable one with `cofre secrets enable database`.</p>
        ) : (
          <ul className="listing" aria-label="Database mounts">
            {mounts.data.map((m) => (
              <li key={m.path}>
                <Link to={['database', m.path]}>{m.path}/</Link>
                {m.description ? <span className="hint"> — {m.description}</span> : null}
              </li>
            ))}
          </ul>
        )
      ) : null}
      <form className="inline" onSubmit={open}>
        <label>
          Open a database mount by path
          <input value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="database" />
        </label>
        <button type="submit">Open</button>
      </form>
    </section>
  );
}

import { useState, type FormEvent } from 'react';
import { call, list } from '../api';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorNotice } from '../components/ErrorNotice';
import { Link } from '../components/Link';
import { useAsync } from '../components/useAsync';
import { navigate } from '../router';

interface LeaseDetails {
  expireTime: string;
  ttl: number;
  renewable: boolean;
  issueTime: string;
}

const routeOf = (prefix: string): string[] => ['leases', ...prefix.split('/')];

/** One lease: its details on demand, renew and (confirmed) revoke. */
function LeaseRow(props: { id: string; onGone: () => void; onError: (err: unknown) => void }) {
  const { id } = props;
  const [details, setDetails] = useState<LeaseDetails>();
  const lookup = async (): Promise<void> => {
    try {
      const d = (await call('PUT', 'sys/leases/lookup', { body: { lease_id: id } }))?.data ?? {};
      setDetails({
        expireTime: String(d.expire_time ?? ''),
        ttl: Number(d.ttl ?? 0),
        renewable: d.renewable === true,
        issueTime: String(d.issue_time ?? ''),
      });
    } catch (err) {
      props.onError(err);
    }
  };
  const renew = async (): Promise<void> => {
    try {
      await call('PUT', 'sys/leases/renew', { body: { lease_id: id } });
      await lookup();
    } catch (err) {
      props.onError(err);
    }
  };
  const name = id.split('/').pop() ?? id;
  // As in Vault, sys/leases/renew refuses a token's lease: a token is renewed with itself (auth/token/renew-self).
  const isToken = id.startsWith('auth/');
  return (
    <tr>
      <th scope="row">
        <code>{name}</code>
      </th>
      <td>
        {details
          ? `${details.ttl}s left (expires ${details.expireTime ? new Date(details.expireTime).toLocaleString() : 'never'})${details.renewable ? '' : ', not renewable'}`
          : ''}
      </td>
      <td className="actions">
        <button type="button" onClick={() => void lookup()}>
          Details<span className="sr-only"> of lease {name}</span>
        </button>
        {isToken ? (
          <span className="hint">A token’s lease is renewed with the token.</span>
        ) : (
          <button type="button" onClick={() => void renew()}>
            Renew<span className="sr-only"> lease {name}</span>
          </button>
        )}
        <ConfirmButton
          danger
          label="Revoke"
          consequence={`Lease ${id} will be revoked: the credential or token it stands for stops working now.`}
          confirmLabel="Revoke the lease"
          onConfirm={async () => {
            try {
              await call('PUT', 'sys/leases/revoke', { body: { lease_id: id } });
              props.onGone();
            } catch (err) {
              props.onError(err);
            }
          }}
        />
      </td>
    </tr>
  );
}

/** The leases under a prefix (LIST sys/leases/lookup/<prefix>), folder by folder. */
export function Leases(props: { prefix: string }) {
  const { prefix } = props;
  const listing = useAsync(() => list(`sys/leases/lookup/${prefix}`), [prefix]);
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const [typed, setTyped] = useState(prefix);
  const go = (e: FormEvent): void => {
    e.preventDefault();
    const p = typed.trim().replace(/^\/+/, '');
    navigate(routeOf(p === '' || p.endsWith('/') ? p : `${p}/`));
  };
  const parts = prefix.split('/').filter((s) => s !== '');
  const keys = listing.data ?? [];
  const folders = keys.filter((k) => k.endsWith('/'));
  const leases = keys.filter((k) => !k.endsWith('/'));

  return (
    <section aria-labelledby="page-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <ol>
          <li>
            <Link to={['leases']}>Leases</Link>
          </li>
          {parts.map((p, i) => (
            <li key={i}>
              <Link to={routeOf(`${parts.slice(0, i + 1).join('/')}/`)}>{p}</Link>
            </li>
          ))}
        </ol>
      </nav>
      <h1 id="page-title" tabIndex={-1}>
        Leases{prefix ? ` under ${prefix}` : ''}
      </h1>
      <form className="inline" onSubmit={go}>
        <label>
          Prefix
          <input value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="database/creds/app/" />
        </label>
        <button type="submit">List</button>
      </form>
      <p role="status" className="status">
        {status}
      </p>
      <ErrorNotice error={listing.error} title="The leases could not be listed" />
      <ErrorNotice error={error} title="The server refused" />
      {listing.loading && !listing.data ? <p role="status">Loading…</p> : null}
      {listing.data && keys.length === 0 ? <p>No leases under this prefix.</p> : null}
      {folders.length > 0 ? (
        <ul className="listing" aria-label="Prefixes">
          {folders.map((f) => (
            <li key={f} className="folder">
              <Link to={routeOf(`${prefix}${f}`)}>{f}</Link>
            </li>
          ))}
        </ul>
      ) : null}
      {leases.length > 0 ? (
        <table>
          <caption>Leases under {prefix || '/'}</caption>
          <thead>
            <tr>
              <th scope="col">Lease</th>
              <th scope="col">Time to live</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {leases.map((l) => (
              <LeaseRow
                key={l}
                id={`${prefix}${l}`}
                onError={setError}
                onGone={() => {
                  setStatus(`Revoked lease ${prefix}${l}.`);
                  void listing.reload();
                }}
              />
            ))}
          </tbody>
        </table>
      ) : null}
      {prefix && keys.length > 0 ? (
        <ConfirmButton
          danger
          label={`Revoke every lease under ${prefix}`}
          consequence={`Every lease under ${prefix} (${keys.length} entries here, and everything below the folders) will be revoked now.`}
          confirmLabel="Revoke them all"
          onConfirm={async () => {
            try {
              await call('PUT', `sys/leases/revoke-prefix/${prefix}`);
              setStatus(`Revoked every lease under ${prefix}.`);
              await listing.reload();
            } catch (err) {
              setError(err);
            }
          }}
        />
      ) : null}
    </section>
  );
}

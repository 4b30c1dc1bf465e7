import { useState } from 'react';
import { Link } from '../components/Link';
import { remaining } from '../database';

const MASK = '••••••••';

export interface Credentials {
  username: string;
  password: string;
  /** A dynamic credential's lease; a static role's password has none (it rotates instead). */
  leaseId?: string;
  /** Seconds the lease (or, for a static role, the password) has left when it was read. */
  ttl: number;
  renewable?: boolean;
  readAt: number;
}

/** One masked value and the button that reveals it; the value enters the page's DOM only while revealed. */
function Masked(props: { label: string; value: string }) {
  const [open, setOpen] = useState(false);
  const id = `credential-${props.label.toLowerCase()}`;
  return (
    <tr>
      <th scope="row">{props.label}</th>
      <td>
        {open ? (
          <code className="value" data-testid={id}>
            {props.value}
          </code>
        ) : (
          <span aria-label={`hidden ${props.label.toLowerCase()}`}>{MASK}</span>
        )}
      </td>
      <td>
        <button type="button" aria-pressed={open} onClick={() => setOpen(!open)}>
          {open ? 'Hide' : 'Reveal'}
          <span className="sr-only"> {props.label.toLowerCase()}</span>
        </button>
      </td>
    </tr>
  );
}

/**
 * Credentials just issued: username and password masked until revealed, the lease and its time to live, and the
 * way to the leases page, where the lease is renewed or revoked. They live in this page's memory only: leaving
 * the page forgets them (a new request issues new ones).
 */
export function DatabaseCredentials(props: { creds: Credentials; leasePrefix?: string }) {
  const { creds } = props;
  const expires = new Date(creds.readAt + creds.ttl * 1000);
  return (
    <div className="credentials">
      <table>
        <caption>Credentials (masked until revealed)</caption>
        <tbody>
          <Masked label="Username" value={creds.username} />
          <Masked label="Password" value={creds.password} />
        </tbody>
      </table>
      <dl className="metadata">
        {creds.leaseId ? (
          <>
            <dt>Lease</dt>
            <dd>
              <code>{creds.leaseId}</code>
            </dd>
            <dt>Time to live</dt>
            <dd>
              {remaining(creds.ttl)} (until {expires.toLocaleString()}){creds.renewable ? ', renewable' : ''}
            </dd>
          </>
        ) : (
          <>
            <dt>Next rotation</dt>
            <dd>
              in {remaining(creds.ttl)} ({expires.toLocaleString()})
            </dd>
          </>
        )}
      </dl>
      {creds.leaseId && props.leasePrefix ? (
        <p>
          <Link to={['leases', ...props.leasePrefix.split('/')]}>Renew or revoke this lease on the Leases page</Link>
        </p>
      ) : null}
    </div>
  );
}

import { useState, type FormEvent } from 'react';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { useAsync } from '../../components/useAsync';
import { listDeliveries } from '../../pipeline';
import { navigate } from '../../router';

/** The deliveries (LIST sys/cofre/deliveries), each with its lifecycle map, and a form to start a new one. */
export function Deliveries() {
  const deliveries = useAsync(listDeliveries, []);
  const [name, setName] = useState('');
  const create = (e: FormEvent): void => {
    e.preventDefault();
    const trimmed = name.trim();
    if (trimmed) navigate(['deliveries', trimmed]);
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Deliveries
      </h1>
      <p className="hint">What an application needs in one namespace, published to clusters by placements.</p>
      <ErrorNotice error={deliveries.error} title="The deliveries could not be listed" />
      {deliveries.loading && !deliveries.data ? <p role="status">Loading…</p> : null}
      {deliveries.data && deliveries.data.length === 0 ? <p>No delivery yet.</p> : null}
      {deliveries.data && deliveries.data.length > 0 ? (
        <ul className="listing" aria-label="Deliveries">
          {deliveries.data.map((d) => (
            <li key={d}>
              <Link to={['deliveries', d]}>{d}</Link>{' '}
              <span className="hint">
                (
                <Link to={['deliveries', d, 'map']}>
                  lifecycle map<span className="sr-only"> of {d}</span>
                </Link>
                )
              </span>
            </li>
          ))}
        </ul>
      ) : null}
      <form className="inline" onSubmit={create}>
        <label>
          New delivery name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

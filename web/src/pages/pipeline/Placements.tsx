import { useState, type FormEvent } from 'react';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { useAsync } from '../../components/useAsync';
import { labelText, listPlacements, readPlacement } from '../../pipeline';
import { navigate } from '../../router';

/** The placements: which delivery each publishes, to which clusters, and a form to start a new one. */
export function Placements() {
  const placements = useAsync(async () => {
    const names = await listPlacements();
    return Promise.all(names.map(async (name) => ({ name, ...(await readPlacement(name)) })));
  }, []);
  const [name, setName] = useState('');
  const create = (e: FormEvent): void => {
    e.preventDefault();
    const trimmed = name.trim();
    if (trimmed) navigate(['placements', trimmed]);
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Placements
      </h1>
      <p className="hint">A placement publishes one delivery to the clusters its label selector or names choose.</p>
      <ErrorNotice error={placements.error} title="The placements could not be listed" />
      {placements.loading && !placements.data ? <p role="status">Loading…</p> : null}
      {placements.data && placements.data.length === 0 ? <p>Nothing is published yet.</p> : null}
      {placements.data && placements.data.length > 0 ? (
        <table className="stack">
          <caption>Placements</caption>
          <thead>
            <tr>
              <th scope="col">Placement</th>
              <th scope="col">Delivery</th>
              <th scope="col">Selects</th>
              <th scope="col">Clusters now</th>
            </tr>
          </thead>
          <tbody>
            {placements.data.map((p) => (
              <tr key={p.name}>
                <th scope="row">
                  <Link to={['placements', p.name]}>{p.name}</Link>
                </th>
                <td>
                  <span className="label">Delivery: </span>
                  <Link to={['deliveries', p.delivery, 'map']}>{p.delivery}</Link>
                </td>
                <td>
                  <span className="label">Selects: </span>
                  {[
                    p.selector ? `labels ${labelText(p.selector.matchLabels) || '(every cluster)'}` : '',
                    p.clusters.length > 0 ? `clusters ${p.clusters.join(', ')}` : '',
                  ]
                    .filter((s) => s !== '')
                    .join('; ')}
                </td>
                <td>
                  <span className="label">Clusters now: </span>
                  {Object.keys(p.status.clusters).sort().join(', ') || 'none'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <form className="inline" onSubmit={create}>
        <label>
          New placement name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

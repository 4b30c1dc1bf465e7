import { useState, type FormEvent } from 'react';
import { list } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import { Link } from '../components/Link';
import { useAsync } from '../components/useAsync';
import { navigate } from '../router';

/** The ACL policies (LIST sys/policies/acl), and a form to start a new one. */
export function PolicyList() {
  const policies = useAsync(() => list('sys/policies/acl'), []);
  const [name, setName] = useState('');
  const create = (e: FormEvent): void => {
    e.preventDefault();
    const trimmed = name.trim().toLowerCase();
    if (trimmed) navigate(['policies', trimmed]);
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Policies
      </h1>
      <ErrorNotice error={policies.error} title="The policies could not be listed" />
      {policies.loading && !policies.data ? <p role="status">Loading…</p> : null}
      {policies.data ? (
        <ul className="listing" aria-label="ACL policies">
          {policies.data.map((p) => (
            <li key={p}>
              <Link to={['policies', p]}>{p}</Link>
            </li>
          ))}
        </ul>
      ) : null}
      <form className="inline" onSubmit={create}>
        <label>
          New policy name
          <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[^/]+" />
        </label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

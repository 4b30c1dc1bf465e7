import { useState, type FormEvent } from 'react';
import { list } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import { Link } from '../components/Link';
import { useAsync } from '../components/useAsync';
import { ENGINE_PATH, type DatabaseKind } from '../database';
import { navigate } from '../router';
import { DatabaseCrumbs } from './DatabaseCrumbs';

const KINDS: { kind: DatabaseKind; title: string; one: string; what: string }[] = [
  { kind: 'connections', title: 'Connections', one: 'connection', what: 'How Cofre reaches a database.' },
  {
    kind: 'roles',
    title: 'Dynamic roles',
    one: 'dynamic role',
    what: 'Each request for credentials creates a new database user that lives as long as its lease.',
  },
  {
    kind: 'static-roles',
    title: 'Static roles',
    one: 'static role',
    what: 'An existing database user whose password Cofre rotates on a schedule.',
  },
];

/** One kind of entry of a mount: the list, and a form to start a new one. */
function Entries(props: { mount: string; kind: DatabaseKind; title: string; one: string; what: string }) {
  const { mount, kind } = props;
  const names = useAsync(() => list(`${mount}/${ENGINE_PATH[kind]}`), [mount, kind]);
  const [name, setName] = useState('');
  const create = (e: FormEvent): void => {
    e.preventDefault();
    const trimmed = name.trim();
    if (trimmed) navigate(['database', mount, kind, trimmed]);
  };
  const headingId = `${kind}-title`;
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>{props.title}</h2>
      <p className="hint">{props.what}</p>
      <ErrorNotice error={names.error} title={`The ${props.title.toLowerCase()} could not be listed`} />
      {names.data && names.data.length === 0 ? <p>None yet.</p> : null}
      {names.data && names.data.length > 0 ? (
        <ul className="listing" aria-label={props.title}>
          {names.data.map((n) => (
            <li key={n}>
              <Link to={['database', mount, kind, n]}>{n}</Link>
            </li>
          ))}
        </ul>
      ) : null}
      <form className="inline" onSubmit={create}>
        <label>
          New {props.one} name
          <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[^/]+" />
        </label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

/** A database mount: its connections, dynamic roles and static roles. */
export function DatabaseMount(props: { mount: string }) {
  return (
    <section aria-labelledby="page-title">
      <DatabaseCrumbs />
      <h1 id="page-title" tabIndex={-1}>
        {props.mount}/
      </h1>
      {KINDS.map((k) => (
        <Entries key={k.kind} mount={props.mount} {...k} />
      ))}
    </section>
  );
}

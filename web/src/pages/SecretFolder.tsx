import { useState, type FormEvent } from 'react';
import { ErrorNotice } from '../components/ErrorNotice';
import { Link } from '../components/Link';
import { useAsync } from '../components/useAsync';
import { kvMount, listSecrets } from '../kv';
import { navigate } from '../router';
import { Breadcrumbs } from './Breadcrumbs';

/** One folder of a KV mount: its secrets and sub-folders (LIST), and a form to start a new secret here. */
export function SecretFolder(props: { mount: string; folder: string }) {
  const { mount, folder } = props;
  const listing = useAsync(async () => {
    const kv = await kvMount(mount);
    return { kv, keys: await listSecrets(kv, folder) };
  }, [mount, folder]);
  const [name, setName] = useState('');
  const create = (e: FormEvent): void => {
    e.preventDefault();
    const path = `${folder}${name.trim().replace(/^\/+/, '')}`;
    if (path && !path.endsWith('/')) navigate(['secrets', mount, ...path.split('/')]);
  };
  const segments = folder.split('/').filter((s) => s !== '');

  return (
    <section aria-labelledby="page-title">
      <Breadcrumbs mount={mount} segments={segments} />
      <h1 id="page-title" tabIndex={-1}>
        {mount}/{folder}
      </h1>
      {listing.data ? <p className="hint">KV version {listing.data.kv.version}</p> : null}
      <ErrorNotice error={listing.error} title="This folder could not be listed" />
      {listing.loading && !listing.data ? <p role="status">Loading…</p> : null}
      {listing.data ? (
        listing.data.keys.length === 0 ? (
          <p>Nothing here yet.</p>
        ) : (
          <ul className="listing" aria-label={`Contents of ${mount}/${folder}`}>
            {listing.data.keys.map((key) => (
              <li key={key} className={key.endsWith('/') ? 'folder' : 'secret'}>
                <Link to={['secrets', mount, ...`${folder}${key}`.split('/')]}>
                  <span className="sr-only">{key.endsWith('/') ? 'Folder ' : 'Secret '}</span>
                  {key}
                </Link>
              </li>
            ))}
          </ul>
        )
      ) : null}
      <form className="inline" onSubmit={create}>
        <label>
          New secret in {mount}/{folder}
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="app/config" required />
        </label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

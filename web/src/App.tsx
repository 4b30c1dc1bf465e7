import { useEffect, useState } from 'react';
import { Link } from './components/Link';
import { SignOutButton } from './components/SignOutButton';
import { Audit } from './pages/Audit';
import { Database } from './pages/Database';
import { Leases } from './pages/Leases';
import { Mounts } from './pages/Mounts';
import * as Pipeline from './pages/pipeline';
import { PolicyEditor } from './pages/PolicyEditor';
import { PolicyList } from './pages/PolicyList';
import { SecretFolder } from './pages/SecretFolder';
import { SecretView } from './pages/SecretView';
import { identify, SignIn, type Identity } from './pages/SignIn';
import { useRoute } from './router';
import { currentToken, signIn, signOut } from './session';

const SECTIONS = [
  { id: 'secrets', label: 'Secrets' },
  { id: 'database', label: 'Databases' },
  { id: 'policies', label: 'Policies' },
  { id: 'audit', label: 'Audit' },
  { id: 'leases', label: 'Leases' },
  { id: 'deliveries', label: 'Deliveries' },
  { id: 'clusters', label: 'Clusters' },
  { id: 'placements', label: 'Placements' },
] as const;

/** The page for a route: secrets/<mount>/<path> (a trailing "/" is a folder), policies/<name>, leases/<prefix>. */
function Page(props: { route: string[] }) {
  const [section = 'secrets', ...rest] = props.route;
  if (section === 'database') return <Database route={rest} />;
  if (section === 'audit') return <Audit />;
  if (section === 'policies') return rest[0] ? <PolicyEditor key={rest[0]} name={rest[0]} /> : <PolicyList />;
  if (section === 'leases') return <Leases key={rest.join('/')} prefix={rest.join('/')} />;
  if (section === 'deliveries') return <Pipeline.DeliveryPages rest={rest} />;
  if (section === 'clusters')
    return rest[0] ? <Pipeline.ClusterView key={rest[0]} name={rest[0]} /> : <Pipeline.Clusters />;
  if (section === 'placements')
    return rest[0] ? <Pipeline.PlacementEditor key={rest[0]} name={rest[0]} /> : <Pipeline.Placements />;
  const [mount, ...path] = rest;
  if (!mount) return <Mounts />;
  if (path.length === 0 || path[path.length - 1] === '') return <SecretFolder mount={mount} folder={path.join('/')} />;
  return <SecretView key={`${mount}/${path.join('/')}`} mount={mount} path={path.join('/')} />;
}

export function App() {
  const route = useRoute();
  const [who, setWho] = useState<Identity | undefined>();
  const [checking, setChecking] = useState(currentToken() !== undefined);
  const [notice, setNotice] = useState('');

  // A token kept from earlier in this tab is checked again: it may have expired or been revoked since.
  useEffect(() => {
    const token = currentToken();
    if (!token) return;
    identify(token)
      .then(setWho, () => signOut())
      .finally(() => setChecking(false));
  }, []);

  // Moving to another page moves focus to its heading, so a screen reader announces where the user is.
  const routeKey = route.join('/');
  useEffect(() => {
    const heading = document.querySelector<HTMLElement>('main h1');
    heading?.focus();
  }, [routeKey, who]);

  if (checking) return <p role="status">Checking the session…</p>;
  if (!who) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(token, identity, origin) => {
          signIn(token, origin);
          setNotice('');
          setWho(identity);
        }}
      />
    );
  }
  const section = route[0] ?? 'secrets';
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Cofre</span>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map((s) => (
              <li key={s.id}>
                <Link to={[s.id]} current={section === s.id}>
                  {s.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who">
          Signed in as <strong>{who.displayName || 'token'}</strong>
          <span className="hint"> ({who.policies.join(', ')})</span>
        </span>
        <SignOutButton
          onSignedOut={(text) => {
            setNotice(text);
            setWho(undefined);
          }}
        />
      </header>
      <main id="main">
        <Page route={route} />
      </main>
    </>
  );
}

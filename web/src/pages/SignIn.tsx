import { useState, type FormEvent } from 'react';
import { call } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';

export interface Identity {
  displayName: string;
  policies: string[];
}

/** Checks a token with auth/token/lookup-self: a token that cannot look itself up is refused before it is kept. */
export async function identify(token: string): Promise<Identity> {
  const res = await call('GET', 'auth/token/lookup-self', { token });
  return { displayName: String(res?.data?.display_name ?? ''), policies: (res?.data?.policies ?? []).map(String) };
}

/** Sign in with a token, or with a username and password (the userpass method at the mount the user names). */
export function SignIn(props: { onSignedIn: (token: string, who: Identity) => void }) {
  const [method, setMethod] = useState<'token' | 'userpass'>('token');
  const [token, setToken] = useState('');
  const [mount, setMount] = useState('userpass');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      let value = token.trim();
      if (method === 'userpass') {
        const path = `auth/${mount.replace(/^\/+|\/+$/g, '')}/login/${username}`;
        const res = await call('POST', path, { body: { password }, token: '' });
        value = String(res?.auth?.client_token ?? '');
        if (value === '') throw new Error('the server answered the login without a token');
      }
      props.onSignedIn(value, await identify(value));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="sign-in">
      <h1 tabIndex={-1}>Sign in to Cofre</h1>
      <form onSubmit={(e) => void submit(e)} aria-describedby="sign-in-note">
        <fieldset>
          <legend>Method</legend>
          <label>
            <input type="radio" name="method" checked={method === 'token'} onChange={() => setMethod('token')} />
            With a token
          </label>
          <label>
            <input type="radio" name="method" checked={method === 'userpass'} onChange={() => setMethod('userpass')} />
            With a username and password
          </label>
        </fieldset>
        {method === 'token' ? (
          <label>
            Token
            <input
              type="password"
              autoComplete="off"
              required
              value={token}
              onChange={(e) => setToken(e.target.value)}
            />
          </label>
        ) : (
          <>
            <label>
              Username
              <input autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
            </label>
            <label>
              Password
              <input
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
            <label>
              Mount path
              <input required value={mount} onChange={(e) => setMount(e.target.value)} />
            </label>
          </>
        )}
        <ErrorNotice error={error} title="Sign-in failed" />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p id="sign-in-note" className="hint">
          The token is kept in this tab only (session storage) and sent to the server with each request.
        </p>
      </form>
    </main>
  );
}

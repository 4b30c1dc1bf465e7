import { useRef, useState, type FormEvent } from 'react';
import { call } from '../api';
import { ErrorNotice } from '../components/ErrorNotice';
import type { TokenOrigin } from '../session';

export interface Identity {
  displayName: string;
  policies: string[];
}

/** Checks a token with auth/token/lookup-self: a token that cannot look itself up is refused before it is kept. */
export async function identify(token: string): Promise<Identity> {
  const res = await call('GET', 'auth/token/lookup-self', { token });
  return { displayName: String(res?.data?.display_name ?? ''), policies: (res?.data?.policies ?? []).map(String) };
}

type Method = 'token' | 'userpass' | 'jwt';

/** A login's token (userpass or jwt at the mount the user names); the login itself needs no token. */
async function login(path: string, body: Record<string, string>): Promise<string> {
  const res = await call('POST', path, { body, token: '' });
  const value = String(res?.auth?.client_token ?? '');
  if (value === '') throw new Error('the server answered the login without a token');
  return value;
}

const mountOf = (typed: string): string => typed.replace(/^\/+|\/+$/g, '');

/**
 * Sign in with a token, with a username and password (the userpass method), or with a JWT and a role (the jwt
 * method), each at the mount the user names.
 */
export function SignIn(props: {
  onSignedIn: (token: string, who: Identity, origin: TokenOrigin) => void;
  /** What the last sign-out did (the token revoked, or only forgotten). */
  notice?: string;
}) {
  const [method, setMethod] = useState<Method>('token');
  const [mount, setMount] = useState('userpass');
  const [jwtMount, setJwtMount] = useState('jwt');
  const [role, setRole] = useState('');
  // The secret fields are not controlled: React would copy a controlled field's value into the page's HTML.
  const tokenField = useRef<HTMLInputElement>(null);
  const passwordField = useRef<HTMLInputElement>(null);
  const jwtField = useRef<HTMLInputElement>(null);
  const [username, setUsername] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      let value = (tokenField.current?.value ?? '').trim();
      if (method === 'userpass') {
        const password = passwordField.current?.value ?? '';
        value = await login(`auth/${mountOf(mount)}/login/${username}`, { password });
      }
      if (method === 'jwt') {
        const jwt = (jwtField.current?.value ?? '').trim();
        value = await login(`auth/${mountOf(jwtMount)}/login`, { jwt, ...(role ? { role } : {}) });
      }
      props.onSignedIn(value, await identify(value), method === 'token' ? 'pasted' : 'login');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="sign-in">
      <h1 tabIndex={-1}>Sign in to Cofre</h1>
      {props.notice ? (
        <p role="status" className="status">
          {props.notice}
        </p>
      ) : null}
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
          <label>
            <input type="radio" name="method" checked={method === 'jwt'} onChange={() => setMethod('jwt')} />
            With a JWT (OIDC ID token)
          </label>
        </fieldset>
        {method === 'jwt' ? (
          <>
            <label>
              Role
              <input value={role} onChange={(e) => setRole(e.target.value)} aria-describedby="jwt-role-note" />
            </label>
            <p id="jwt-role-note" className="hint">
              Leave it empty to use the method’s default role.
            </p>
            <label>
              JWT
              <input ref={jwtField} type="password" autoComplete="off" required />
            </label>
            <label>
              Mount path
              <input required value={jwtMount} onChange={(e) => setJwtMount(e.target.value)} />
            </label>
            <p className="hint">
              Cofre’s jwt method checks a JWT you already have (from your identity provider or a CI system). The OIDC
              browser sign-in, a redirect to the provider, is not built into Cofre yet.
            </p>
          </>
        ) : method === 'token' ? (
          <label>
            Token
            <input ref={tokenField} type="password" autoComplete="off" required />
          </label>
        ) : (
          <>
            <label>
              Username
              <input autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
            </label>
            <label>
              Password
              <input ref={passwordField} type="password" autoComplete="current-password" required />
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

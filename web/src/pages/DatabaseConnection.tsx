import { useRef } from 'react';
import { call } from '../api';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorNotice } from '../components/ErrorNotice';
import { listOf, statementsOf, statementsText } from '../database';
import { navigate } from '../router';
import { DatabaseCrumbs } from './DatabaseCrumbs';
import { useDatabaseEntry } from './useDatabaseEntry';

const PLUGINS = ['postgresql-database-plugin', 'mysql-database-plugin'];

function toForm(data: Record<string, unknown> | undefined) {
  const details = (data?.connection_details ?? {}) as Record<string, unknown>;
  return {
    plugin_name: String(data?.plugin_name ?? PLUGINS[0]),
    connection_url: String(details.connection_url ?? ''),
    username: String(details.username ?? ''),
    allowed_roles: ((data?.allowed_roles as string[] | undefined) ?? []).join(', '),
    root_rotation_statements: statementsText(data?.root_credentials_rotate_statements),
    password_policy: String(data?.password_policy ?? ''),
    username_template: String(data?.username_template ?? ''),
    max_open_connections: String(details.max_open_connections ?? '4'),
  };
}

const toBody = (f: ReturnType<typeof toForm>): Record<string, unknown> => ({
  ...f,
  allowed_roles: listOf(f.allowed_roles),
  root_rotation_statements: statementsOf(f.root_rotation_statements),
  max_open_connections: Number(f.max_open_connections),
});

/**
 * One database connection: its settings in a form whose password field is write-only (the server never returns
 * it, and the page never fills it in), verify-and-reset, rotate-root and delete.
 */
export function DatabaseConnection(props: { mount: string; name: string }) {
  const { mount, name } = props;
  const c = useDatabaseEntry(mount, 'connections', name, toForm, toBody);
  // Uncontrolled, so the typed password never becomes an attribute of the page's HTML.
  const password = useRef<HTMLInputElement>(null);
  const verify = useRef<HTMLInputElement>(null);
  const f = c.form;

  const save = async (): Promise<void> => {
    if (!f) return;
    // The server masks a password written into the URL; written back, the mask would become the password.
    const shownUrl = String((c.entry.data?.connection_details as Record<string, unknown> | undefined)?.connection_url);
    if (f.connection_url !== shownUrl && f.connection_url.includes('*****')) {
      c.setError(
        new Error(
          'The connection URL still holds the masked password (*****): type the password part again, or use ' +
            '{{password}} and the Password field.',
        ),
      );
      return;
    }
    const typed = password.current?.value ?? '';
    const saved = await c.save({
      verify_connection: verify.current?.checked ?? true,
      ...(typed ? { password: typed } : {}),
    });
    if (saved && password.current) password.current.value = '';
  };
  const username = f?.username || '(no username)';

  return (
    <section aria-labelledby="page-title">
      <DatabaseCrumbs mount={mount} />
      <h1 id="page-title" tabIndex={-1}>
        Connection {name}
      </h1>
      <p role="status" className="status">
        {c.status}
      </p>
      <ErrorNotice error={c.entry.error} title="The connection could not be read" />
      <ErrorNotice error={c.error} title="The server refused" />
      {c.entry.loading && !f ? <p role="status">Loading…</p> : null}
      {f ? (
        <form
          className="editor"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          {!c.exists ? <p>A new connection: it is created when you save it.</p> : null}
          <label>
            Plugin
            <select
              value={f.plugin_name}
              disabled={c.exists}
              onChange={(e) => c.set('plugin_name', e.target.value)}
              aria-describedby="plugin-note"
            >
              {PLUGINS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </label>
          {c.exists ? (
            <p id="plugin-note" className="hint">
              The plugin of an existing connection cannot change; delete the connection to start again.
            </p>
          ) : null}
          <label>
            Connection URL
            <input
              required
              value={f.connection_url}
              onChange={(e) => c.set('connection_url', e.target.value)}
              placeholder="postgresql://{{username}}:{{password}}@db.example:5432/app"
              aria-describedby="url-note"
            />
          </label>
          <p id="url-note" className="hint">
            {'{{username}}'} and {'{{password}}'} are filled in from the fields below. A password written into the URL
            itself is shown masked.
          </p>
          <label>
            Username
            <input value={f.username} onChange={(e) => c.set('username', e.target.value)} autoComplete="off" />
          </label>
          <label>
            Password
            <input ref={password} type="password" autoComplete="new-password" aria-describedby="password-note" />
          </label>
          <p id="password-note" className="hint">
            {c.exists
              ? 'Stored and never shown. Type a new one to replace it; leave it empty to keep the stored one.'
              : 'Stored and never shown again, not even to you.'}
          </p>
          <label>
            Allowed roles
            <input
              value={f.allowed_roles}
              onChange={(e) => c.set('allowed_roles', e.target.value)}
              placeholder="* or app, reports"
              aria-describedby="roles-note"
            />
          </label>
          <p id="roles-note" className="hint">
            Comma-separated role names that may use this connection; * for every role.
          </p>
          <label className="check">
            <input ref={verify} type="checkbox" defaultChecked />
            Connect once to verify before saving
          </label>
          <details>
            <summary>More settings</summary>
            <label>
              Root rotation statements
              <textarea
                rows={3}
                value={f.root_rotation_statements}
                onChange={(e) => c.set('root_rotation_statements', e.target.value)}
                placeholder="ALTER USER &quot;{{username}}&quot; WITH PASSWORD '{{password}}';"
              />
            </label>
            <label>
              Password policy
              <input value={f.password_policy} onChange={(e) => c.set('password_policy', e.target.value)} />
            </label>
            <label>
              Username template
              <input value={f.username_template} onChange={(e) => c.set('username_template', e.target.value)} />
            </label>
            <label>
              Maximum open connections
              <input
                type="number"
                min={1}
                value={f.max_open_connections}
                onChange={(e) => c.set('max_open_connections', e.target.value)}
              />
            </label>
          </details>
          <div className="actions">
            <button type="submit" className="primary" disabled={c.busy}>
              Save connection
            </button>
          </div>
        </form>
      ) : null}
      {c.exists ? (
        <div className="actions">
          <button
            type="button"
            disabled={c.busy}
            onClick={() =>
              void c.run(async () => {
                await call('PUT', `${mount}/reset/${name}`);
                return `Connected: ${name}'s connection pool was opened again from the stored settings.`;
              })
            }
          >
            Verify and reset
          </button>
          <ConfirmButton
            danger
            label="Rotate the root credentials"
            disabled={c.busy || !f?.username}
            consequence={`Cofre will change the password of ${username} on the database to a new one that only Cofre knows: it is never shown, not even to you. Anything else that logs in as ${username} with the current password stops working. This cannot be undone.`}
            confirmLabel="Rotate the password"
            onConfirm={async () => {
              await c.run(async () => {
                await call('PUT', `${mount}/rotate-root/${name}`);
                return `Rotated: only Cofre knows the password of ${username} now.`;
              });
            }}
          />
          <ConfirmButton
            danger
            label="Delete this connection"
            disabled={c.busy}
            consequence={`Connection ${name} will be deleted with its stored password. Roles that name it can no longer issue credentials, and the users they issued can no longer be dropped on the database by Cofre, until a connection of that name exists again.`}
            confirmLabel="Delete the connection"
            onConfirm={async () => {
              const done = await c.run(async () => {
                await call('DELETE', `${mount}/config/${name}`);
                return '';
              });
              if (done) navigate(['database', mount]);
            }}
          />
        </div>
      ) : null}
    </section>
  );
}

import { useState } from 'react';
import { call } from '../api';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorNotice } from '../components/ErrorNotice';
import { durationText, statementsOf, statementsText } from '../database';
import { navigate } from '../router';
import { DatabaseCredentials, type Credentials } from './DatabaseCredentials';
import { ConnectionField } from './DatabaseConnectionField';
import { DatabaseCrumbs } from './DatabaseCrumbs';
import { useDatabaseEntry } from './useDatabaseEntry';

function toForm(data: Record<string, unknown> | undefined) {
  return {
    db_name: String(data?.db_name ?? ''),
    creation_statements: statementsText(data?.creation_statements),
    revocation_statements: statementsText(data?.revocation_statements),
    renew_statements: statementsText(data?.renew_statements),
    rollback_statements: statementsText(data?.rollback_statements),
    default_ttl: durationText(data?.default_ttl),
    max_ttl: durationText(data?.max_ttl),
    username_template: String(data?.username_template ?? ''),
  };
}

const STATEMENT_FIELDS = [
  'creation_statements',
  'revocation_statements',
  'renew_statements',
  'rollback_statements',
] as const;

function toBody(f: ReturnType<typeof toForm>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...f };
  for (const key of STATEMENT_FIELDS) body[key] = statementsOf(f[key]);
  // An emptied TTL goes back to the mount's default.
  body.default_ttl = f.default_ttl.trim() || '0';
  body.max_ttl = f.max_ttl.trim() || '0';
  return body;
}

/** A dynamic role: how its users are created and dropped, their TTLs, and credentials issued on request. */
export function DatabaseRole(props: { mount: string; name: string }) {
  const { mount, name } = props;
  const r = useDatabaseEntry(mount, 'roles', name, toForm, toBody);
  const [creds, setCreds] = useState<Credentials>();
  const f = r.form;

  const issue = () =>
    r.run(async () => {
      const res = await call('GET', `${mount}/creds/${name}`);
      setCreds({
        username: String(res?.data?.username ?? ''),
        password: String(res?.data?.password ?? ''),
        leaseId: String(res?.lease_id ?? ''),
        ttl: Number(res?.lease_duration ?? 0),
        renewable: res?.renewable === true,
        readAt: Date.now(),
      });
      return 'New credentials issued: a new database user under its own lease.';
    });

  return (
    <section aria-labelledby="page-title">
      <DatabaseCrumbs mount={mount} />
      <h1 id="page-title" tabIndex={-1}>
        Dynamic role {name}
      </h1>
      <p role="status" className="status">
        {r.status}
      </p>
      <ErrorNotice error={r.entry.error} title="The role could not be read" />
      <ErrorNotice error={r.error} title="The server refused" />
      {r.entry.loading && !f ? <p role="status">Loading…</p> : null}
      {f ? (
        <form
          className="editor"
          onSubmit={(e) => {
            e.preventDefault();
            void r.save();
          }}
        >
          {!r.exists ? <p>A new role: it is created when you save it.</p> : null}
          <ConnectionField mount={mount} value={f.db_name} onChange={(v) => r.set('db_name', v)} />
          <label>
            Creation statements
            <textarea
              required
              rows={4}
              className="code"
              value={f.creation_statements}
              onChange={(e) => r.set('creation_statements', e.target.value)}
              placeholder={`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`}
              aria-describedby="statements-note"
            />
          </label>
          <p id="statements-note" className="hint">
            SQL run to create each user; {'{{name}}'}, {'{{password}}'} and {'{{expiration}}'} are filled in. Statements
            end with “;”.
          </p>
          <div className="row">
            <label>
              Default TTL
              <input
                value={f.default_ttl}
                onChange={(e) => r.set('default_ttl', e.target.value)}
                placeholder="the mount's default"
                aria-describedby="ttl-note"
              />
            </label>
            <label>
              Maximum TTL
              <input
                value={f.max_ttl}
                onChange={(e) => r.set('max_ttl', e.target.value)}
                placeholder="the mount's maximum"
                aria-describedby="ttl-note"
              />
            </label>
          </div>
          <p id="ttl-note" className="hint">
            Seconds, or a duration such as 10m or 1h30m; empty for the mount’s.
          </p>
          <details>
            <summary>Revocation, renewal and rollback</summary>
            <label>
              Revocation statements
              <textarea
                rows={3}
                className="code"
                value={f.revocation_statements}
                onChange={(e) => r.set('revocation_statements', e.target.value)}
                placeholder="empty: the plugin drops the user"
              />
            </label>
            <label>
              Renewal statements
              <textarea
                rows={2}
                className="code"
                value={f.renew_statements}
                onChange={(e) => r.set('renew_statements', e.target.value)}
              />
            </label>
            <label>
              Rollback statements
              <textarea
                rows={2}
                className="code"
                value={f.rollback_statements}
                onChange={(e) => r.set('rollback_statements', e.target.value)}
              />
            </label>
            <label>
              Username template
              <input value={f.username_template} onChange={(e) => r.set('username_template', e.target.value)} />
            </label>
          </details>
          <div className="actions">
            <button type="submit" className="primary" disabled={r.busy}>
              Save role
            </button>
          </div>
        </form>
      ) : null}
      {r.exists ? (
        <>
          <h2>Credentials</h2>
          <p className="hint">Each request creates a new database user, valid until its lease ends or is revoked.</p>
          <div className="actions">
            <button type="button" disabled={r.busy} onClick={() => void issue()}>
              Get credentials
            </button>
          </div>
          {creds ? <DatabaseCredentials creds={creds} leasePrefix={`${mount}/creds/${name}/`} /> : null}
          <h2>Danger zone</h2>
          <ConfirmButton
            danger
            label="Delete this role"
            disabled={r.busy}
            consequence={`Role ${name} will be deleted: no new credentials can be issued for it. Users it already created stay valid until their leases end or are revoked (they are then dropped with the plugin's default statements).`}
            confirmLabel="Delete the role"
            onConfirm={async () => {
              const done = await r.run(async () => {
                await call('DELETE', `${mount}/roles/${name}`);
                return '';
              });
              if (done) navigate(['database', mount]);
            }}
          />
        </>
      ) : null}
    </section>
  );
}

import { useState } from 'react';
import { call } from '../api';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorNotice } from '../components/ErrorNotice';
import { durationText, statementsOf, statementsText } from '../database';
import { navigate } from '../router';
import { DatabaseCredentials, type Credentials } from './DatabaseCredentials';
import { DatabaseCrumbs } from './DatabaseCrumbs';
import { ConnectionField } from './DatabaseConnectionField';
import { useDatabaseEntry } from './useDatabaseEntry';

function toForm(data: Record<string, unknown> | undefined) {
  return {
    db_name: String(data?.db_name ?? ''),
    username: String(data?.username ?? ''),
    rotation_period: durationText(data?.rotation_period),
    rotation_schedule: String(data?.rotation_schedule ?? ''),
    rotation_statements: statementsText(data?.rotation_statements),
  };
}

/** The engine takes exactly one of a period and a schedule: the one the form does not use is not sent. */
function toBody(f: ReturnType<typeof toForm>): Record<string, unknown> {
  const { rotation_period, rotation_schedule, ...rest } = f;
  return {
    ...rest,
    rotation_statements: statementsOf(f.rotation_statements),
    ...(rotation_schedule.trim() ? { rotation_schedule: rotation_schedule.trim() } : { rotation_period }),
  };
}

/** A static role: an existing database user whose password Cofre rotates; its current password on request. */
export function DatabaseStaticRole(props: { mount: string; name: string }) {
  const { mount, name } = props;
  const s = useDatabaseEntry(mount, 'static-roles', name, toForm, toBody);
  const [creds, setCreds] = useState<Credentials>();
  const f = s.form;
  const info = s.entry.data;
  const user = f?.username || 'the user';

  const read = () =>
    s.run(async () => {
      const res = await call('GET', `${mount}/static-creds/${name}`);
      setCreds({
        username: String(res?.data?.username ?? ''),
        password: String(res?.data?.password ?? ''),
        ttl: Number(res?.data?.ttl ?? 0),
        readAt: Date.now(),
      });
      return '';
    });

  return (
    <section aria-labelledby="page-title">
      <DatabaseCrumbs mount={mount} />
      <h1 id="page-title" tabIndex={-1}>
        Static role {name}
      </h1>
      <p role="status" className="status">
        {s.status}
      </p>
      <ErrorNotice error={s.entry.error} title="The role could not be read" />
      <ErrorNotice error={s.error} title="The server refused" />
      {s.entry.loading && !f ? <p role="status">Loading…</p> : null}
      {info ? (
        <dl className="metadata">
          <dt>Last rotation</dt>
          <dd>{info.last_vault_rotation ? new Date(String(info.last_vault_rotation)).toLocaleString() : 'never'}</dd>
          <dt>Next rotation</dt>
          <dd>{info.next_vault_rotation ? new Date(String(info.next_vault_rotation)).toLocaleString() : ''}</dd>
          {info.last_rotation_error ? (
            <>
              <dt>Last rotation error</dt>
              <dd>{String(info.last_rotation_error)}</dd>
            </>
          ) : null}
        </dl>
      ) : null}
      {f ? (
        <form
          className="editor"
          onSubmit={(e) => {
            e.preventDefault();
            void s.save();
          }}
        >
          {!s.exists ? (
            <p>
              A new static role: when you save it, Cofre takes the user’s password over at once (only Cofre knows it
              from then on).
            </p>
          ) : null}
          <ConnectionField mount={mount} value={f.db_name} fixed={s.exists} onChange={(v) => s.set('db_name', v)} />
          <label>
            Database user
            <input
              required
              disabled={s.exists}
              value={f.username}
              onChange={(e) => s.set('username', e.target.value)}
            />
          </label>
          <div className="row">
            <label>
              Rotation period
              <input
                value={f.rotation_period}
                onChange={(e) => s.set('rotation_period', e.target.value)}
                placeholder="24h"
                aria-describedby="rotation-note"
              />
            </label>
            <label>
              or rotation schedule (cron, UTC)
              <input
                value={f.rotation_schedule}
                onChange={(e) => s.set('rotation_schedule', e.target.value)}
                placeholder="0 3 * * *"
                aria-describedby="rotation-note"
              />
            </label>
          </div>
          <p id="rotation-note" className="hint">
            One of them: a period (at least 5s, e.g. 24h) or a cron schedule, which wins when both are filled in.
          </p>
          <label>
            Rotation statements
            <textarea
              rows={2}
              className="code"
              value={f.rotation_statements}
              onChange={(e) => s.set('rotation_statements', e.target.value)}
              placeholder="empty: the plugin's own ALTER USER"
            />
          </label>
          <div className="actions">
            <button type="submit" className="primary" disabled={s.busy}>
              Save static role
            </button>
          </div>
        </form>
      ) : null}
      {s.exists ? (
        <>
          <h2>Credentials</h2>
          <div className="actions">
            <button type="button" disabled={s.busy} onClick={() => void read()}>
              Get credentials
            </button>
            <ConfirmButton
              danger
              label="Rotate the password now"
              disabled={s.busy}
              consequence={`The password of ${user} is changed now to a new one only Cofre knows. Anything still using the current password stops working.`}
              confirmLabel="Rotate now"
              onConfirm={async () => {
                setCreds(undefined);
                await s.run(async () => {
                  await call('PUT', `${mount}/rotate-role/${name}`);
                  await s.entry.reload();
                  return `Rotated the password of ${user}.`;
                });
              }}
            />
          </div>
          {creds ? <DatabaseCredentials creds={creds} /> : null}
          <h2>Danger zone</h2>
          <ConfirmButton
            danger
            label="Delete this static role"
            disabled={s.busy}
            consequence={`Static role ${name} will be deleted: Cofre stops rotating the password of ${user} and forgets it. The user and its current password stay on the database, known to no one but what already uses it.`}
            confirmLabel="Delete the static role"
            onConfirm={async () => {
              const done = await s.run(async () => {
                await call('DELETE', `${mount}/static-roles/${name}`);
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

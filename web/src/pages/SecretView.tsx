import { useRef, useState } from 'react';
import { ApiError } from '../api';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorNotice } from '../components/ErrorNotice';
import { useAsync } from '../components/useAsync';
import {
  changeVersions,
  deleteSecret,
  kvMount,
  patchSecret,
  readKeys,
  readMetadata,
  readSecret,
  writeSecret,
  type SecretMetadata,
  type VersionAction,
} from '../kv';
import { navigate } from '../router';
import { Breadcrumbs } from './Breadcrumbs';
import { SecretEditor, type Row } from './SecretEditor';
import { SecretValues } from './SecretValues';
import { MetadataList, VersionHistory } from './VersionHistory';

const CAS_MISMATCH = 'check-and-set parameter did not match';

interface Conflict {
  base: number;
  latest: SecretMetadata;
}

const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;

/** One secret: its keys (values masked until revealed), its versions, and writing, patching and deleting it. */
export function SecretView(props: { mount: string; path: string }) {
  const { mount, path } = props;
  const [viewing, setViewing] = useState(0); // 0: the current version
  const [values, setValues] = useState<Record<string, unknown>>();
  const [editing, setEditing] = useState<{ mode: 'write' | 'patch'; rows: Row[]; base: number }>();
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>();
  const [conflict, setConflict] = useState<Conflict>();
  const [status, setStatus] = useState('');
  const attempt = useRef<{ set: Record<string, string>; remove: string[] }>({ set: {}, remove: [] });

  const loaded = useAsync(async () => {
    const kv = await kvMount(mount);
    if (kv.version === 1) {
      // KV v1 has no subkeys/: its one read carries the values (still masked on the page until revealed).
      const secret = await readSecret(kv, path).catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      return { kv, meta: undefined, exists: secret !== undefined, version: 0, keys: secret?.data ?? null, v1: secret };
    }
    const meta = await readMetadata(kv, path).catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
    if (!meta) return { kv, meta, exists: false, version: 0, keys: null, v1: undefined };
    const version = viewing || meta.currentVersion;
    const shown = await readKeys(kv, path, version);
    return { kv, meta, exists: true, version, keys: shown.data, v1: undefined };
  }, [mount, path, viewing]);

  const data = loaded.data;
  const kv = data?.kv;
  const segments = path.split('/');
  const keys = data?.keys ? Object.keys(data.keys) : [];
  const newSecret = data !== undefined && !data.exists;

  const reveal = async (): Promise<void> => {
    if (!kv || !data) return;
    if (data.v1) return setValues(data.v1.data ?? {});
    try {
      setValues((await readSecret(kv, path, data.version)).data ?? {});
    } catch (err) {
      setError(err);
    }
  };

  const startEditing = async (mode: 'write' | 'patch'): Promise<void> => {
    if (!kv || !data) return;
    setError(undefined);
    setConflict(undefined);
    setStatus('');
    const base = data.meta?.currentVersion ?? 0;
    let rows: Row[] = [];
    if (mode === 'write' && data.exists) {
      // A new version starts from the latest one's values: reading them is the point of this request.
      try {
        const latest = data.v1 ?? (await readSecret(kv, path, base));
        rows = Object.entries(latest.data ?? {}).map(([key, value]) => ({
          key,
          value: typeof value === 'string' ? value : JSON.stringify(value),
        }));
      } catch (err) {
        return setError(err);
      }
    }
    setEditing({ mode, rows, base });
  };

  const save = async (set: Record<string, string>, remove: string[], base: number): Promise<void> => {
    if (!kv || !editing) return;
    attempt.current = { set, remove };
    setSaving(true);
    setError(undefined);
    setConflict(undefined);
    try {
      if (editing.mode === 'patch') {
        await patchSecret(kv, path, { ...set, ...Object.fromEntries(remove.map((k) => [k, null])) }, base);
        setStatus(`Saved: the keys you changed are in a new version of ${path}.`);
      } else {
        const version = await writeSecret(kv, path, set, kv.version === 2 ? base : undefined);
        setStatus(version ? `Saved version ${version} of ${path}.` : `Saved ${path}.`);
      }
      setEditing(undefined);
      setValues(undefined);
      setViewing(0);
      await loaded.reload();
    } catch (err) {
      if (err instanceof ApiError && err.errors.some((m) => m.includes(CAS_MISMATCH))) {
        setConflict({ base, latest: await readMetadata(kv, path) });
      }
      setError(err);
    } finally {
      setSaving(false);
    }
  };

  const onVersionAction = async (action: VersionAction, version: number): Promise<void> => {
    if (!kv) return;
    setError(undefined);
    try {
      await changeVersions(kv, path, action, [version]);
      setValues(undefined);
      await loaded.reload();
      // Said once the history shows it, so what the status says and what the table shows agree.
      setStatus(`Version ${version}: ${action === 'destroy' ? 'destroyed' : `${action}d`}.`);
    } catch (err) {
      setError(err);
    }
  };

  const removeSecret = async (): Promise<void> => {
    if (!kv) return;
    try {
      await deleteSecret(kv, path);
      navigate(['secrets', mount, ...segments.slice(0, -1), '']);
    } catch (err) {
      setError(err);
    }
  };

  const shownVersion = data?.meta?.versions.find((v) => v.version === data.version);
  return (
    <section aria-labelledby="page-title">
      <Breadcrumbs mount={mount} segments={segments} />
      <h1 id="page-title" tabIndex={-1}>
        {mount}/{path}
      </h1>
      <p role="status" className="status">
        {status}
      </p>
      <ErrorNotice error={loaded.error} title="This secret could not be read" />
      {conflict ? (
        <div role="alert" className="notice conflict">
          <strong>Not saved: someone changed this secret while you were editing.</strong>
          <p>
            You started from version {conflict.base || 'none (a new secret)'}; the latest is now version{' '}
            {conflict.latest.currentVersion}
            {conflict.latest.updatedTime ? `, written ${new Date(conflict.latest.updatedTime).toLocaleString()}` : ''}.
            Your changes are still in the form below. Look at version {conflict.latest.currentVersion} first, or write
            yours over it.
          </p>
          <div className="actions">
            <button
              type="button"
              onClick={() => {
                setEditing(undefined);
                setConflict(undefined);
                setError(undefined);
                setViewing(0);
                void loaded.reload();
              }}
            >
              Discard my changes and show version {conflict.latest.currentVersion}
            </button>
            <ConfirmButton
              danger
              label="Write mine over it"
              consequence={`Your values become version ${conflict.latest.currentVersion + 1}, replacing what version ${conflict.latest.currentVersion} holds (it stays in the history).`}
              confirmLabel="Write my changes"
              onConfirm={() => save(attempt.current.set, attempt.current.remove, conflict.latest.currentVersion)}
            />
          </div>
        </div>
      ) : (
        <ErrorNotice error={error} title="The server refused" />
      )}
      {loaded.loading && !data ? <p role="status">Loading…</p> : null}
      {newSecret && !editing ? (
        <p>
          There is no secret at {mount}/{path} yet.{' '}
          <button type="button" className="primary" onClick={() => void startEditing('write')}>
            Create it
          </button>
        </p>
      ) : null}
      {data?.exists ? (
        <>
          <h2>
            {data.meta ? `Version ${data.version}` : 'Value'}
            {shownVersion && shownVersion.version !== data.meta?.currentVersion ? ' (not the current version)' : ''}
          </h2>
          {data.keys === null ? (
            <p>This version is {shownVersion?.destroyed ? 'destroyed' : 'deleted'}: its values cannot be read.</p>
          ) : (
            <SecretValues key={data.version} keys={keys} values={values} onReveal={reveal} />
          )}
          {!editing ? (
            <div className="actions">
              <button type="button" className="primary" onClick={() => void startEditing('write')}>
                {data.meta ? 'Write a new version' : 'Edit'}
              </button>
              {data.meta && data.keys !== null ? (
                <button type="button" onClick={() => void startEditing('patch')}>
                  Change some keys
                </button>
              ) : null}
              <ConfirmButton
                danger
                label="Delete this secret"
                consequence={
                  data.meta
                    ? `${mount}/${path} will be deleted with all ${data.meta.versions.length} of its versions and its metadata, for good.`
                    : `${mount}/${path} will be deleted for good.`
                }
                confirmLabel="Delete the secret"
                onConfirm={removeSecret}
              />
            </div>
          ) : null}
        </>
      ) : null}
      {editing ? (
        <SecretEditor
          mode={editing.mode}
          versioned={kv?.version === 2}
          initial={editing.rows}
          existingKeys={keys}
          busy={saving}
          onSave={(set, remove) => void save(set, remove, editing.base)}
          onCancel={() => {
            setEditing(undefined);
            setConflict(undefined);
          }}
        />
      ) : null}
      {data?.meta ? (
        <>
          <h2>History</h2>
          <MetadataList meta={data.meta} />
          <VersionHistory
            path={path}
            meta={data.meta}
            viewing={data.version}
            onView={(v) => {
              setValues(undefined);
              setViewing(v);
            }}
            onAction={onVersionAction}
          />
        </>
      ) : null}
    </section>
  );
}

import { useEffect, useState } from 'react';
import { call } from '../api';
import { useAsync } from '../components/useAsync';
import { changedFields, ENGINE_PATH, readEntry, type DatabaseKind } from '../database';

/**
 * A database entry (connection, role or static role) in a form: read once, the form filled from it (or empty for
 * a new one), and saved with only the fields the user changed.
 */
export function useDatabaseEntry<F extends Record<string, unknown>>(
  mount: string,
  kind: DatabaseKind,
  name: string,
  /** The form's values from what the server answered (undefined: the entry does not exist yet). */
  toForm: (data: Record<string, unknown> | undefined) => F,
  /** The form's text as the engine's fields take it (lists, numbers); the form itself when it is the same. */
  toBody: (form: F) => Record<string, unknown> = (form) => form,
) {
  const entry = useAsync(() => readEntry(mount, kind, name), [mount, kind, name]);
  const [form, setForm] = useState<F>();
  const [initial, setInitial] = useState<F>();
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const loaded = !entry.loading && entry.error === undefined;

  useEffect(() => {
    if (!loaded) return;
    const values = toForm(entry.data);
    setForm(values);
    setInitial(values);
    // toForm is the page's pure mapping; only a new answer refills the form.
  }, [loaded, entry.data]);

  const path = `${mount}/${ENGINE_PATH[kind]}/${name}`;

  /** Runs an action, showing the server's message if it fails; true when it succeeded. */
  const run = async (action: () => Promise<string>): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    setStatus('');
    try {
      setStatus(await action());
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };

  return {
    entry,
    exists: entry.data !== undefined,
    form,
    set: <K extends keyof F>(key: K, value: F[K]) => setForm((f) => (f ? { ...f, [key]: value } : f)),
    error,
    setError,
    status,
    busy,
    path,
    run,
    /** Writes the form (only what changed for an existing entry) plus `extra`, then reads the entry again. */
    save: (extra: Record<string, unknown> = {}) =>
      run(async () => {
        if (!form) return '';
        const before = entry.data === undefined || !initial ? undefined : toBody(initial);
        const body = { ...changedFields(toBody(form), before), ...extra };
        if (entry.data !== undefined && Object.keys(body).length === 0) return 'Nothing changed.';
        await call('PUT', path, { body });
        await entry.reload();
        return `Saved ${name}.`;
      }),
  };
}

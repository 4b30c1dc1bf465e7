import { useId, useRef, useState, type FormEvent } from 'react';

export interface Row {
  key: string;
  value: string;
}

/** A row of the form: its key is React state; its value lives only in its field (see valueField). */
interface FormRow {
  id: number;
  key: string;
  initialValue: string;
}

/**
 * Key/value rows for a new version (every key; what is left out is gone from the new version) or for a patch
 * (only the keys typed here change; the keys ticked for removal go). Values are typed in masked fields.
 *
 * The value fields are not React-controlled: React mirrors a controlled field's value into its `value` attribute,
 * which puts every value of the secret into the page's markup (what an extension or a DOM dump reads) while the
 * editor is open. Here a value is only ever the field's `value` property, set once when the field appears.
 */
export function SecretEditor(props: {
  mode: 'write' | 'patch';
  /** KV v2 keeps versions; a KV v1 write replaces the one value. */
  versioned: boolean;
  initial: Row[];
  existingKeys: string[];
  busy: boolean;
  onSave: (set: Record<string, string>, remove: string[]) => void;
  onCancel: () => void;
}) {
  const nextId = useRef(0);
  const formRow = (row: Row): FormRow => ({ id: nextId.current++, key: row.key, initialValue: row.value });
  const [rows, setRows] = useState<FormRow[]>(() =>
    (props.initial.length > 0 ? props.initial : [{ key: '', value: '' }]).map(formRow),
  );
  const fields = useRef(new Map<number, HTMLInputElement>());
  const initialised = useRef(new Set<number>());
  // A new callback each render: React calls it with null and then the field again, which must not reset it.
  const valueField = (row: FormRow) => (el: HTMLInputElement | null) => {
    if (!el) return;
    if (!initialised.current.has(row.id)) {
      el.value = row.initialValue;
      initialised.current.add(row.id);
    }
    fields.current.set(row.id, el);
  };
  const valueOf = (row: FormRow): string => fields.current.get(row.id)?.value ?? '';
  const [remove, setRemove] = useState<Set<string>>(new Set());
  const [show, setShow] = useState(false);
  const [problem, setProblem] = useState('');
  const id = useId();

  const setKey = (i: number, key: string): void => setRows((rs) => rs.map((r, j) => (j === i ? { ...r, key } : r)));

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const filled = rows
      .map((r) => ({ key: r.key, value: valueOf(r) }))
      .filter((r) => r.key.trim() !== '' || r.value !== '');
    const keys = filled.map((r) => r.key.trim());
    if (keys.some((k) => k === '')) return setProblem('Every value needs a key.');
    const twice = keys.find((k, i) => keys.indexOf(k) !== i);
    if (twice) return setProblem(`The key "${twice}" is there twice.`);
    if (props.mode === 'patch' && filled.length === 0 && remove.size === 0) {
      return setProblem('Nothing to change: type a key to set or tick one to remove.');
    }
    setProblem('');
    props.onSave(Object.fromEntries(filled.map((r) => [r.key.trim(), r.value])), [...remove]);
  };

  return (
    <form className="editor" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        {props.mode === 'patch'
          ? 'Change some keys (patch)'
          : props.versioned
            ? 'Write a new version'
            : 'Write the secret'}
      </h2>
      <p className="hint">
        {props.mode === 'write'
          ? `The ${props.versioned ? 'new version' : 'secret'} holds exactly these keys.`
          : 'Only the keys below change; every other key keeps its value.'}
      </p>
      {rows.map((row, i) => (
        <div className="row" key={row.id}>
          <label>
            Key {i + 1}
            <input value={row.key} onChange={(e) => setKey(i, e.target.value)} autoComplete="off" />
          </label>
          <label>
            Value {i + 1}
            <input type={show ? 'text' : 'password'} ref={valueField(row)} autoComplete="off" spellCheck={false} />
          </label>
          <button
            type="button"
            onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))}
            disabled={rows.length === 1}
          >
            Remove row<span className="sr-only"> {i + 1}</span>
          </button>
        </div>
      ))}
      <div className="actions">
        <button type="button" onClick={() => setRows((rs) => [...rs, formRow({ key: '', value: '' })])}>
          Add a key
        </button>
        <label className="check">
          <input type="checkbox" checked={show} onChange={(e) => setShow(e.target.checked)} />
          Show values while typing
        </label>
      </div>
      {props.mode === 'patch' && props.existingKeys.length > 0 ? (
        <fieldset>
          <legend>Keys to remove</legend>
          {props.existingKeys.map((k) => (
            <label className="check" key={k}>
              <input
                type="checkbox"
                checked={remove.has(k)}
                onChange={(e) =>
                  setRemove((r) => {
                    const next = new Set(r);
                    if (e.target.checked) next.add(k);
                    else next.delete(k);
                    return next;
                  })
                }
              />
              {k}
            </label>
          ))}
        </fieldset>
      ) : null}
      {problem ? (
        <p role="alert" className="notice error">
          {problem}
        </p>
      ) : null}
      <div className="actions">
        <button type="submit" className="primary" disabled={props.busy}>
          {props.busy
            ? 'Saving…'
            : props.mode === 'patch'
              ? 'Save changes'
              : props.versioned
                ? 'Save new version'
                : 'Save'}
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

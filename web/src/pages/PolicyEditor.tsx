import { useEffect, useRef, useState } from 'react';
import { ApiError, call } from '../api';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorNotice } from '../components/ErrorNotice';
import { useAsync } from '../components/useAsync';
import { navigate } from '../router';

/** The server names the line of a syntax error ("on line 4", "opened on line 2", "the block on line 6"). */
export function lineOfError(messages: string[]): number | undefined {
  for (const m of messages) {
    const match = /\bline (\d+)\b/.exec(m);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/** Selects a whole line of a text area and scrolls it into view. */
function selectLine(area: HTMLTextAreaElement, line: number): void {
  const lines = area.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 20;
  area.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

const BUILT_IN = new Set(['root', 'default']);

/** One policy's HCL in an editor; a refused save points at the line the server names. */
export function PolicyEditor(props: { name: string }) {
  const { name } = props;
  const policy = useAsync(async () => {
    try {
      const res = await call('GET', `sys/policies/acl/${name}`);
      return { text: String(res?.data?.policy ?? ''), exists: true };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { text: '', exists: false };
      throw err;
    }
  }, [name]);
  const [text, setText] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const [saving, setSaving] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (policy.data) setText(policy.data.text);
  }, [policy.data]);

  const errorLine = error instanceof ApiError ? lineOfError(error.errors) : undefined;
  const value = text ?? '';
  const save = async (): Promise<void> => {
    setSaving(true);
    setError(undefined);
    setStatus('');
    try {
      await call('PUT', `sys/policies/acl/${name}`, { body: { policy: value } });
      setStatus(`Saved policy ${name}.`);
      await policy.reload();
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  };

  const lines = value.split('\n');
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Policy {name}
      </h1>
      <p role="status" className="status">
        {status}
      </p>
      <ErrorNotice error={policy.error} title="The policy could not be read" />
      {policy.data && !policy.data.exists ? <p>A new policy: it is created when you save it.</p> : null}
      {name === 'root' ? <p>The root policy is built in: it grants everything and cannot be changed.</p> : null}
      <ErrorNotice error={error} title="The server refused the policy" />
      {errorLine !== undefined ? (
        <p className="notice error-line">
          Line {errorLine}: <code>{lines[errorLine - 1] ?? ''}</code>{' '}
          <button type="button" onClick={() => area.current && selectLine(area.current, errorLine)}>
            Go to line {errorLine}
          </button>
        </p>
      ) : null}
      {policy.data ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <label htmlFor="policy-text">Policy (HCL or JSON)</label>
          <div className="code-editor">
            <ol className="gutter" aria-hidden="true">
              {lines.map((_, i) => (
                <li key={i} className={i + 1 === errorLine ? 'bad' : undefined}>
                  {i + 1}
                </li>
              ))}
            </ol>
            <textarea
              id="policy-text"
              ref={area}
              value={value}
              rows={Math.max(12, lines.length + 1)}
              spellCheck={false}
              wrap="off"
              readOnly={name === 'root'}
              aria-invalid={errorLine !== undefined}
              aria-describedby={errorLine !== undefined ? 'policy-error-line' : undefined}
              onChange={(e) => setText(e.target.value)}
            />
          </div>
          {errorLine !== undefined ? (
            <p id="policy-error-line" className="sr-only">
              The server found a mistake on line {errorLine}.
            </p>
          ) : null}
          <div className="actions">
            <button type="submit" className="primary" disabled={saving || name === 'root'}>
              {saving ? 'Saving…' : 'Save policy'}
            </button>
            {policy.data.exists && !BUILT_IN.has(name) ? (
              <ConfirmButton
                danger
                label="Delete policy"
                consequence={`Policy ${name} will be deleted. Tokens that carry it keep its name but lose what it granted.`}
                confirmLabel={`Delete ${name}`}
                onConfirm={async () => {
                  try {
                    await call('DELETE', `sys/policies/acl/${name}`);
                    navigate(['policies']);
                  } catch (err) {
                    setError(err);
                  }
                }}
              />
            ) : null}
          </div>
        </form>
      ) : null}
    </section>
  );
}

import { useState } from 'react';

const MASK = '••••••••';

/** Renders a value as text: strings as they are, anything nested (KV allows JSON values) as JSON. */
const shown = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/**
 * A version's keys with their values masked. A value reaches the page only when the user reveals it: before that
 * the page holds the key names alone (v2's subkeys/), and `onReveal` reads the version once.
 */
export function SecretValues(props: {
  keys: string[];
  values: Record<string, unknown> | undefined;
  onReveal: () => Promise<void>;
}) {
  const [revealed, setRevealed] = useState<Set<string>>(new Set());
  const toggle = async (key: string): Promise<void> => {
    if (!revealed.has(key) && !props.values) await props.onReveal();
    setRevealed((r) => {
      const next = new Set(r);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });
  };
  if (props.keys.length === 0) return <p>This version has no keys.</p>;
  return (
    <table className="values">
      <caption>Keys and values (masked until revealed)</caption>
      <thead>
        <tr>
          <th scope="col">Key</th>
          <th scope="col">Value</th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {props.keys.map((key) => {
          const open = revealed.has(key) && props.values !== undefined;
          return (
            <tr key={key}>
              <th scope="row">{key}</th>
              <td>
                {open ? (
                  <code className="value" data-testid={`value-${key}`}>
                    {shown(props.values?.[key])}
                  </code>
                ) : (
                  <span aria-label="hidden value">{MASK}</span>
                )}
              </td>
              <td>
                <button type="button" aria-pressed={open} onClick={() => void toggle(key)}>
                  {open ? 'Hide' : 'Reveal'}
                  <span className="sr-only"> {key}</span>
                </button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

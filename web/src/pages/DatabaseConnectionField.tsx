import { list } from '../api';
import { useAsync } from '../components/useAsync';

/** A role's connection: a select of the mount's connections, or a typed name for a token that may not list them. */
export function ConnectionField(props: {
  mount: string;
  value: string;
  onChange: (v: string) => void;
  fixed?: boolean;
}) {
  const names = useAsync(() => list(`${props.mount}/config`).catch(() => [] as string[]), [props.mount]);
  const options = names.data ?? [];
  // A typed name once the list is known to be empty (or unreadable), or to hold no entry of that name.
  if (names.data && (options.length === 0 || (props.value && !options.includes(props.value)))) {
    return (
      <label>
        Connection
        <input required value={props.value} disabled={props.fixed} onChange={(e) => props.onChange(e.target.value)} />
      </label>
    );
  }
  return (
    <label>
      Connection
      <select required value={props.value} disabled={props.fixed} onChange={(e) => props.onChange(e.target.value)}>
        <option value="">Choose a connection</option>
        {options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    </label>
  );
}

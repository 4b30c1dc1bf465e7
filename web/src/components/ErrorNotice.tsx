import { ApiError } from '../api';

/** The server's own messages, announced to screen readers as they appear. */
export function ErrorNotice(props: { error: unknown; title?: string }) {
  if (props.error === undefined || props.error === null) return null;
  const messages =
    props.error instanceof ApiError && props.error.errors.length > 0
      ? props.error.errors
      : [props.error instanceof Error ? props.error.message : String(props.error)];
  return (
    <div role="alert" className="notice error">
      {props.title ? <strong>{props.title}</strong> : null}
      {messages.length === 1 ? (
        <p>{messages[0]}</p>
      ) : (
        <ul>
          {messages.map((m, i) => (
            <li key={i}>{m}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

import type { Json } from '../../api';

/**
 * The server's preview of a delivery (sys/cofre/deliveries/<name>/preview): each object as the cluster agent would
 * apply it, with every value replaced by a placeholder, the rollout patches and the notes agents would report.
 */
export function DeliveryPreview(props: { preview: Json }) {
  const p = props.preview;
  return (
    <section className="preview" aria-labelledby="preview-title">
      <h2 id="preview-title">
        Preview: revision {p.revision} in namespace {p.namespace}
      </h2>
      {p.source_error ? (
        <div role="alert" className="notice error">
          <strong>The delivery cannot be built</strong>
          <p>{p.source_error}</p>
        </div>
      ) : (
        <p className="hint">
          {p.revision === p.current_revision
            ? `Saving this changes nothing: revision ${p.revision} stays.`
            : `Saving this makes revision ${p.revision}${p.current_revision ? ` (now ${p.current_revision})` : ''}.`}{' '}
          What every cluster the delivery is placed on gets; values are never shown here.
        </p>
      )}
      {(p.objects as Json[]).map((o) => (
        <article key={`${o.manifest.kind}/${o.manifest.metadata.name}`} className="object">
          <h3>
            {o.manifest.kind} {o.manifest.metadata.namespace}/{o.manifest.metadata.name}
          </h3>
          <p className="hint">
            Item {o.item}, {o.mode === 'env' ? 'environment variables' : o.mode === 'file' ? 'in-memory files' : o.mode}
            , from {o.source}; keys:{' '}
            {Object.keys({ ...o.manifest.data, ...o.manifest.binaryData }).join(', ') || 'none'}
          </p>
          <pre className="manifest" aria-label={`Manifest of ${o.manifest.kind} ${o.manifest.metadata.name}`}>
            {JSON.stringify(o.manifest, null, 2)}
          </pre>
        </article>
      ))}
      {(p.rollout as Json[]).length > 0 ? (
        <>
          <h3>Rolled on each change</h3>
          <ul>
            {(p.rollout as Json[]).map((r) => (
              <li key={`${r.kind}/${r.name}`}>
                {r.kind} {r.namespace}/{r.name}: its pod template gets{' '}
                <code>{JSON.stringify(r.patch.spec.template.metadata.annotations)}</code>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {(p.notes as string[]).length > 0 ? (
        <>
          <h3>Notes the agents will report</h3>
          <ul>
            {(p.notes as string[]).map((n, i) => (
              <li key={i}>{n}</li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

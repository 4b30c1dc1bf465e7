import { Link } from '../../components/Link';
import { rolloutState, when, type ClusterStatus } from '../../pipeline';

/** One cluster's pods by revision: a meter per revision, newest first, so the shift during a rollout is visible. */
function PodsByRevision(props: { pods: Record<string, number>; desired: number }) {
  const entries = Object.entries(props.pods)
    .map(([rev, count]) => [Number(rev), count] as const)
    .sort((a, b) => b[0] - a[0]);
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (entries.length === 0) return <span className="hint">no pods reported</span>;
  return (
    <ul className="pods">
      {entries.map(([rev, count]) => (
        <li key={rev}>
          <span className={rev === props.desired ? 'rev current' : 'rev'}>
            rev {rev}: {count} {count === 1 ? 'pod' : 'pods'}
          </span>
          <meter min={0} max={total} value={count} aria-label={`Pods on revision ${rev}`} />
        </li>
      ))}
    </ul>
  );
}

/** The clusters a delivery is placed on, each with the revision it should hold, what its agent applied and runs. */
export function ClusterRevisions(props: { caption: string; clusters: Record<string, ClusterStatus> }) {
  const names = Object.keys(props.clusters).sort();
  if (names.length === 0) return <p>No cluster is selected.</p>;
  return (
    <table className="stack">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Cluster</th>
          <th scope="col">Should hold</th>
          <th scope="col">Applied</th>
          <th scope="col">Pods by revision</th>
          <th scope="col">Rollout</th>
          <th scope="col">Last seen</th>
        </tr>
      </thead>
      <tbody>
        {names.map((name) => {
          const c = props.clusters[name]!;
          const state = rolloutState(c);
          return (
            <tr key={name} data-cluster={name}>
              <th scope="row">
                <Link to={['clusters', name]}>{name}</Link>
                {c.placements ? <span className="via">by {c.placements.join(', ')}</span> : null}
              </th>
              <td>
                <span className="label">Should hold: </span>revision {c.desired_revision}
              </td>
              <td>
                <span className="label">Applied: </span>
                {c.revision > 0 ? `revision ${c.revision} (${when(c.applied_at)})` : 'nothing yet'}
              </td>
              <td>
                <PodsByRevision pods={c.pods} desired={c.desired_revision} />
              </td>
              <td>
                <span className={`tone ${state.tone}`}>{state.text}</span>
                {c.error ? <p className="cluster-error">{c.error}</p> : null}
                {c.credentials ? (
                  <p className="hint">
                    Database credentials: {c.credentials.leases.length} held
                    {c.credentials.replaced_leases.length > 0
                      ? `, ${c.credentials.replaced_leases.length} replaced (revoked once the new revision is reported)`
                      : ''}
                    {c.credentials.error ? `; ${c.credentials.error}` : ''}
                  </p>
                ) : null}
                {c.notes.length > 0 ? (
                  <ul className="notes">
                    {c.notes.map((n, i) => (
                      <li key={i}>{n}</li>
                    ))}
                  </ul>
                ) : null}
              </td>
              <td>
                <span className="label">Last seen: </span>
                {when(c.last_seen)}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

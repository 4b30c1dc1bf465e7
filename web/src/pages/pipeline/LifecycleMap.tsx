import { PageHeader } from '../../components/PageHeader';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { usePolling } from '../../components/usePolling';
import { ApiError, call, type Json } from '../../api';
import { rolloutState, type ClusterStatus } from '../../pipeline';
import { ClusterRevisions } from './ClusterRevisions';

/** How often the map asks again: the agents report every few seconds, and nothing streams their reports. */
const POLL_MS = 2000;

async function loadMap(delivery: string) {
  let data: Json;
  try {
    data = (await call('GET', `sys/cofre/deliveries/${delivery}/status`)).data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw new Error(`There is no delivery named "${delivery}".`);
    throw err;
  }
  return {
    revision: Number(data.revision),
    namespace: String(data.namespace),
    sourceError: data.source_error as string | null,
    placements: data.placements as string[],
    clusters: data.clusters as Record<string, ClusterStatus>,
  };
}

/** Per delivery, every cluster it is placed on: the revision each should hold, applied, and its pods by revision. */
export function LifecycleMap(props: { delivery: string }) {
  const { delivery } = props;
  const map = usePolling(() => loadMap(delivery), POLL_MS, [delivery]);
  const data = map.data;
  const states = data ? Object.values(data.clusters).map(rolloutState) : [];
  const done = states.filter((s) => s.tone === 'ok').length;
  return (
    <section aria-labelledby="page-title">
      <PageHeader
        trail={[
          ['Deliveries', ['deliveries']],
          [delivery, ['deliveries', delivery]],
        ]}
        title={`Lifecycle of ${delivery}`}
      />
      <ErrorNotice error={map.error} title="The map could not be read" />
      {!data && !map.error ? <p role="status">Loading…</p> : null}
      {data ? (
        <>
          <p role="status" className="summary">
            Revision {data.revision} in namespace {data.namespace}:{' '}
            {states.length === 0
              ? 'not placed on any cluster.'
              : `rolled out on ${done} of ${states.length} ${states.length === 1 ? 'cluster' : 'clusters'}.`}
          </p>
          {data.sourceError ? (
            <ErrorNotice error={new Error(data.sourceError)} title="The delivery cannot be built" />
          ) : null}
          <p className="hint">
            Placements:{' '}
            {data.placements.length === 0
              ? 'none'
              : data.placements.map((p, i) => (
                  <span key={p}>
                    {i > 0 ? ', ' : ''}
                    <Link to={['placements', p]}>{p}</Link>
                  </span>
                ))}
            . Updated {map.at ? map.at.toLocaleTimeString() : ''}, every {POLL_MS / 1000} s from the agents’ reports.
          </p>
          <ClusterRevisions caption={`Clusters holding ${delivery}`} clusters={data.clusters} />
        </>
      ) : null}
    </section>
  );
}

import { PageHeader } from '../../components/PageHeader';
import { useEffect, useRef, useState } from 'react';
import { ApiError, call, type Json } from '../../api';
import { ConfirmButton } from '../../components/ConfirmButton';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { useAsync } from '../../components/useAsync';
import { usePolling } from '../../components/usePolling';
import {
  labelText,
  listClusters,
  listDeliveries,
  parseLabelText,
  readPlacement,
  type PlacementRead,
} from '../../pipeline';
import { navigate } from '../../router';
import { ClusterRevisions } from './ClusterRevisions';

interface Draft {
  delivery: string;
  labels: string;
  everyCluster: boolean;
  clusters: string[];
}

/** The body of a placement write (or its preview). */
function bodyOf(draft: Draft): Json {
  const { labels } = parseLabelText(draft.labels);
  const bySelector = draft.everyCluster || Object.keys(labels).length > 0;
  return {
    delivery: draft.delivery,
    ...(bySelector ? { selector: { matchLabels: draft.everyCluster ? {} : labels } } : {}),
    ...(draft.clusters.length > 0 ? { clusters: draft.clusters } : {}),
  };
}

const names = (list: string[]): string => (list.length === 0 ? 'none' : list.join(', '));

/**
 * One placement: choose the delivery and the clusters (by labels and/or names), preview which clusters it reaches
 * and which gain or lose the delivery, publish after a confirmation; its live status per cluster; unpublish.
 */
export function PlacementEditor(props: { name: string }) {
  const { name } = props;
  const choices = useAsync(async () => ({ deliveries: await listDeliveries(), clusters: await listClusters() }), []);
  const live = usePolling(
    async () => {
      try {
        return { placement: await readPlacement(name) };
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }
    },
    2000,
    [name],
  );
  // What unpublishing would remove: asked again only when the clusters the placement selects change.
  const selectedNow = Object.keys(live.data?.placement.status.clusters ?? {})
    .sort()
    .join(',');
  const unpublish = useAsync(async () => {
    if (!live.data) return undefined;
    const res = await call('PUT', `sys/cofre/placements/${name}/preview`, { body: { unpublish: true } });
    return (res.data.loses ?? []) as string[];
  }, [name, selectedNow, live.data ? 'stored' : 'none']);
  const [draft, setDraft] = useState<Draft>({ delivery: '', labels: '', everyCluster: false, clusters: [] });
  const [preview, setPreview] = useState<{ body: string; data: Json }>();
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const loaded = useRef(false);

  // The form starts from the placement as stored, once: later polls update the status, never the user's edits.
  const stored: PlacementRead | undefined = live.data?.placement;
  useEffect(() => {
    if (loaded.current || live.data === undefined) return;
    loaded.current = true;
    if (stored) {
      const matchLabels = stored.selector?.matchLabels;
      setDraft({
        delivery: stored.delivery,
        labels: labelText(matchLabels),
        everyCluster: matchLabels !== undefined && Object.keys(matchLabels).length === 0,
        clusters: stored.clusters,
      });
    }
  }, [live.data, stored]);
  useEffect(() => {
    if (!draft.delivery && choices.data?.deliveries[0])
      setDraft((d) => ({ ...d, delivery: choices.data!.deliveries[0]! }));
  }, [choices.data, draft.delivery]);

  const change = (patch: Partial<Draft>): void => setDraft((d) => ({ ...d, ...patch }));
  const labelProblem = parseLabelText(draft.labels).problem;
  const body = JSON.stringify(bodyOf(draft));
  const current = preview && preview.body === body ? preview.data : undefined;
  const run = async (what: () => Promise<void>): Promise<void> => {
    setError(undefined);
    setStatus('');
    try {
      await what();
    } catch (err) {
      setError(err);
    }
  };
  const showPreview = (): Promise<void> =>
    run(async () => {
      if (labelProblem) throw new Error(`Label selector: ${labelProblem}`);
      const data = (await call('PUT', `sys/cofre/placements/${name}/preview`, { body: bodyOf(draft) })).data;
      setPreview({ body, data });
    });

  return (
    <section aria-labelledby="page-title">
      <PageHeader
        trail={[['Placements', ['placements']]]}
        title={stored ? `Placement ${name}` : `New placement ${name}`}
      />
      <ErrorNotice error={choices.error} title="The deliveries or clusters could not be listed" />
      <ErrorNotice error={live.error} title="The placement could not be read" />
      {live.data === undefined && !live.error ? <p role="status">Loading…</p> : null}
      <form className="editor" onSubmit={(e) => e.preventDefault()}>
        <label>
          Delivery
          <select value={draft.delivery} onChange={(e) => change({ delivery: e.target.value })} required>
            {(choices.data?.deliveries ?? []).map((d) => (
              <option key={d}>{d}</option>
            ))}
          </select>
        </label>
        <label>
          Clusters with the labels
          <input
            value={draft.labels}
            disabled={draft.everyCluster}
            onChange={(e) => change({ labels: e.target.value })}
            placeholder="region=eu, tier=store"
          />
        </label>
        <label className="check">
          <input
            type="checkbox"
            checked={draft.everyCluster}
            onChange={(e) => change({ everyCluster: e.target.checked })}
          />
          Every cluster (an empty selector), now and registered later
        </label>
        {choices.data && choices.data.clusters.length > 0 ? (
          <fieldset>
            <legend>And these clusters by name</legend>
            {choices.data.clusters.map((c) => (
              <label key={c}>
                <input
                  type="checkbox"
                  checked={draft.clusters.includes(c)}
                  onChange={(e) =>
                    change({
                      clusters: e.target.checked
                        ? [...draft.clusters, c].sort()
                        : draft.clusters.filter((x) => x !== c),
                    })
                  }
                />
                {c}
              </label>
            ))}
          </fieldset>
        ) : null}
        <div className="actions">
          <button type="button" onClick={() => void showPreview()}>
            Preview the clusters
          </button>
          <ConfirmButton
            label="Publish"
            disabled={!current}
            consequence={
              current
                ? `${draft.delivery} will be published to ${names(current.selected.map((c: Json) => c.name))}. ` +
                  `Clusters that get it now: ${names(current.gains)}. ` +
                  `Clusters that lose it (their agents delete its objects): ${names(current.loses)}.`
                : ''
            }
            confirmLabel="Publish"
            onConfirm={() =>
              run(async () => {
                await call('PUT', `sys/cofre/placements/${name}`, { body: bodyOf(draft) });
                setStatus(`Published ${draft.delivery} with placement ${name}.`);
                setPreview(undefined);
              })
            }
          />
        </div>
        {!current ? <p className="hint">Preview the clusters first: Publish then says exactly what it does.</p> : null}
      </form>
      <p role="status" className="status">
        {status}
      </p>
      <ErrorNotice error={error} title="The server refused" />
      {current ? (
        <section aria-labelledby="placement-preview">
          <h2 id="placement-preview">Preview: {current.selected.length} clusters</h2>
          <p>
            Gets {draft.delivery} now: {names(current.gains)}. Loses it: {names(current.loses)}.
          </p>
          <table className="stack">
            <caption>Clusters this placement would select</caption>
            <thead>
              <tr>
                <th scope="col">Cluster</th>
                <th scope="col">Labels</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {(current.selected as Json[]).map((c) => (
                <tr key={c.name}>
                  <th scope="row">{c.name}</th>
                  <td>{labelText(c.labels) || '–'}</td>
                  <td>{c.state === 'enrolled' ? 'enrolled' : 'waiting for its agent'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      {stored ? (
        <>
          <h2>Status</h2>
          {stored.status.delivery_error ? (
            <ErrorNotice error={new Error(stored.status.delivery_error)} title="The delivery cannot be built" />
          ) : null}
          <ClusterRevisions
            caption={`Clusters ${name} selects now (delivery ${stored.delivery}, revision ${stored.status.delivery_revision})`}
            clusters={stored.status.clusters}
          />
          <p>
            <Link to={['deliveries', stored.delivery, 'map']}>The lifecycle map of {stored.delivery}</Link>
          </p>
          <div className="actions">
            <ConfirmButton
              danger
              label="Unpublish"
              consequence={
                unpublish.data
                  ? `Placement ${name} will be deleted. ${stored.delivery} is removed from: ${names(unpublish.data)} (their agents delete its objects there).`
                  : `Placement ${name} will be deleted. Those of its clusters (${names(Object.keys(stored.status.clusters).sort())}) that no other placement of ${stored.delivery} selects delete its objects.`
              }
              confirmLabel="Unpublish"
              onConfirm={() =>
                run(async () => {
                  await call('DELETE', `sys/cofre/placements/${name}`);
                  navigate(['placements']);
                })
              }
            />
          </div>
        </>
      ) : null}
    </section>
  );
}

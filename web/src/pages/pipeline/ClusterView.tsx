import { PageHeader } from '../../components/PageHeader';
import { useState } from 'react';
import { call } from '../../api';
import { ConfirmButton } from '../../components/ConfirmButton';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { useAsync } from '../../components/useAsync';
import { navigate } from '../../router';
import { labelText, parseLabelText, readCluster, when } from '../../pipeline';
import { BootstrapToken } from './BootstrapToken';

interface Report {
  revision: number;
  applied_at?: string;
  error?: string;
  pods?: Record<string, number>;
}

/** One cluster: its identity and health, what its agent last reported per delivery, its labels, deregistration. */
export function ClusterView(props: { name: string }) {
  const { name } = props;
  const cluster = useAsync(() => readCluster(name), [name]);
  const [labels, setLabels] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const [token, setToken] = useState<{ token: string; ttl: number }>();
  const c = cluster.data;
  const typed = labels ?? labelText(c?.labels);
  const parsed = parseLabelText(typed);

  const act = async (what: () => Promise<void>): Promise<void> => {
    setError(undefined);
    setStatus('');
    try {
      await what();
    } catch (err) {
      setError(err);
    }
  };
  const reports = Object.entries((c?.deliveries ?? {}) as Record<string, Report>);

  return (
    <section aria-labelledby="page-title">
      <PageHeader trail={[['Clusters', ['clusters']]]} title={`Cluster ${name}`} />
      <ErrorNotice error={cluster.error} title="The cluster could not be read" />
      {cluster.loading && !c ? <p role="status">Loading…</p> : null}
      {token ? <BootstrapToken cluster={name} {...token} onDone={() => setToken(undefined)} /> : null}
      {c ? (
        <>
          <dl className="metadata">
            <dt>State</dt>
            <dd>{c.state === 'enrolled' ? `enrolled ${when(c.enrolled_at)}` : 'waiting for its agent to enrol'}</dd>
            <dt>Health</dt>
            <dd>{c.health || 'unknown (no report yet)'}</dd>
            <dt>Last seen</dt>
            <dd>{when(c.last_seen)}</dd>
            <dt>Agent version</dt>
            <dd>{c.agent_version || '–'}</dd>
            <dt>Cluster id</dt>
            <dd>
              <code>{c.cluster_id}</code>
            </dd>
            <dt>Key fingerprints</dt>
            <dd>
              {c.signing_key_fingerprint ? (
                <>
                  signing <code>{c.signing_key_fingerprint}</code>, sealing <code>{c.sealing_key_fingerprint}</code>
                </>
              ) : (
                'none yet'
              )}
            </dd>
            {c.bootstrap_expires_at ? (
              <>
                <dt>Bootstrap token</dt>
                <dd>unused, valid until {when(c.bootstrap_expires_at)}</dd>
              </>
            ) : null}
          </dl>
          <h2>Deliveries its agent reported</h2>
          {reports.length === 0 ? (
            <p>None yet.</p>
          ) : (
            <table className="stack">
              <caption>Last report per delivery</caption>
              <thead>
                <tr>
                  <th scope="col">Delivery</th>
                  <th scope="col">Revision applied</th>
                  <th scope="col">Pods by revision</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {reports.map(([delivery, r]) => (
                  <tr key={delivery}>
                    <th scope="row">
                      <Link to={['deliveries', delivery, 'map']}>{delivery}</Link>
                    </th>
                    <td>
                      revision {r.revision} ({when(r.applied_at)})
                    </td>
                    <td>
                      {Object.entries(r.pods ?? {})
                        .map(([rev, n]) => `rev ${rev}: ${n}`)
                        .join(', ') || '–'}
                    </td>
                    <td>{r.error ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Labels</h2>
          <div className="editor">
            <label>
              Labels of {name}
              <input value={typed} onChange={(e) => setLabels(e.target.value)} placeholder="region=eu, tier=store" />
            </label>
            {parsed.problem ? <p className="hint">{parsed.problem}</p> : null}
            <div className="actions">
              <ConfirmButton
                label="Save labels"
                disabled={parsed.problem !== undefined || typed === labelText(c.labels)}
                consequence={`The labels of ${name} become: ${labelText(parsed.labels) || 'none'}. Placements select by labels: deliveries may be added to or removed from this cluster at once (its agent deletes what a removed delivery made there).`}
                confirmLabel="Save the labels"
                onConfirm={() =>
                  act(async () => {
                    await call('PUT', `sys/cofre/clusters/${name}`, { body: { labels: parsed.labels } });
                    setLabels(undefined);
                    setStatus(`Saved the labels of ${name}.`);
                    await cluster.reload();
                  })
                }
              />
            </div>
          </div>
          <p role="status" className="status">
            {status}
          </p>
          <ErrorNotice error={error} title="The server refused" />
          <h2>Enrolment</h2>
          <div className="actions">
            <ConfirmButton
              label="New bootstrap token"
              consequence={`A new single-use bootstrap token for ${name}, to enrol its agent again with new keys. Once new keys enrol, the tokens of its current agent are revoked.`}
              confirmLabel="Make a new token"
              onConfirm={() =>
                act(async () => {
                  const res = await call('PUT', `sys/cofre/clusters/${name}/bootstrap`);
                  setToken({ token: String(res.data.bootstrap_token), ttl: Number(res.data.bootstrap_ttl) });
                  await cluster.reload();
                })
              }
            />
            <ConfirmButton
              danger
              label="Deregister"
              consequence={`${name} will be deregistered: its agent's identity and tokens are revoked at once, it receives nothing more, and its database credentials are revoked. What its agent created in the cluster stays there.`}
              confirmLabel="Deregister the cluster"
              onConfirm={() =>
                act(async () => {
                  await call('DELETE', `sys/cofre/clusters/${name}`);
                  navigate(['clusters']);
                })
              }
            />
          </div>
        </>
      ) : null}
    </section>
  );
}

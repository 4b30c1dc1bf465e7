import { useState, type FormEvent } from 'react';
import { call } from '../../api';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { useAsync } from '../../components/useAsync';
import { labelText, listClusters, parseLabelText, readCluster, when } from '../../pipeline';
import { BootstrapToken } from './BootstrapToken';

interface Registered {
  cluster: string;
  token: string;
  ttl: number;
}

/** The registered clusters with their health, and the form that registers one (its bootstrap token shown once). */
export function Clusters() {
  const clusters = useAsync(async () => {
    const names = await listClusters();
    return Promise.all(names.map(async (name) => ({ name, ...(await readCluster(name)) })));
  }, []);
  const [name, setName] = useState('');
  const [labels, setLabels] = useState('');
  const [error, setError] = useState<unknown>();
  const [registered, setRegistered] = useState<Registered>();

  const register = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    const parsed = parseLabelText(labels);
    if (parsed.problem) return setError(new Error(`Labels: ${parsed.problem}`));
    const cluster = name.trim();
    try {
      if ((await call('GET', `sys/cofre/clusters/${cluster}`).catch(() => undefined)) !== undefined) {
        return setError(new Error(`A cluster named "${cluster}" is registered already: open it to change its labels.`));
      }
      const res = await call('PUT', `sys/cofre/clusters/${cluster}`, { body: { labels: parsed.labels } });
      // Registered in between by someone else: the write only relabelled it, and no token came back.
      if (!res?.data?.bootstrap_token) return setError(new Error(`"${cluster}" was registered already.`));
      setRegistered({ cluster, token: String(res.data.bootstrap_token), ttl: Number(res.data.bootstrap_ttl) });
      setName('');
      setLabels('');
      await clusters.reload();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Clusters
      </h1>
      {registered ? <BootstrapToken {...registered} onDone={() => setRegistered(undefined)} /> : null}
      <ErrorNotice error={clusters.error} title="The clusters could not be listed" />
      {clusters.loading && !clusters.data ? <p role="status">Loading…</p> : null}
      {clusters.data && clusters.data.length === 0 ? <p>No cluster is registered yet.</p> : null}
      {clusters.data && clusters.data.length > 0 ? (
        <table className="stack">
          <caption>Registered clusters</caption>
          <thead>
            <tr>
              <th scope="col">Cluster</th>
              <th scope="col">State</th>
              <th scope="col">Labels</th>
              <th scope="col">Last seen</th>
              <th scope="col">Agent</th>
              <th scope="col">Health</th>
            </tr>
          </thead>
          <tbody>
            {clusters.data.map((c) => (
              <tr key={c.name} data-cluster={c.name}>
                <th scope="row">
                  <Link to={['clusters', c.name]}>{c.name}</Link>
                </th>
                <td>{c.state === 'enrolled' ? 'enrolled' : 'waiting for its agent'}</td>
                <td>
                  <span className="label">Labels: </span>
                  {labelText(c.labels) || <span className="hint">none</span>}
                </td>
                <td>
                  <span className="label">Last seen: </span>
                  {when(c.last_seen)}
                </td>
                <td>
                  <span className="label">Agent: </span>
                  {c.agent_version || '–'}
                </td>
                <td>
                  <span className={`tone ${c.health === 'ok' ? 'ok' : c.health ? 'bad' : 'idle'}`}>
                    {c.health || 'unknown'}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <form className="editor" onSubmit={(e) => void register(e)}>
        <h2>Register a cluster</h2>
        <div className="row">
          <label>
            Cluster name
            <input value={name} onChange={(e) => setName(e.target.value)} required placeholder="eu-west" />
          </label>
          <label>
            Labels
            <input value={labels} onChange={(e) => setLabels(e.target.value)} placeholder="region=eu, tier=store" />
          </label>
          <button type="submit" className="primary">
            Register
          </button>
        </div>
        <p className="hint">Registering answers a single-use bootstrap token for the cluster’s agent, shown once.</p>
      </form>
      <ErrorNotice error={error} title="The cluster was not registered" />
    </section>
  );
}

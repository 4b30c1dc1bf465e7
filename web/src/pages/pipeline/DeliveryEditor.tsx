import { PageHeader } from '../../components/PageHeader';
import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, call, type Json } from '../../api';
import { ConfirmButton } from '../../components/ConfirmButton';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Link } from '../../components/Link';
import { useAsync } from '../../components/useAsync';
import { navigate } from '../../router';
import { DeliveryPreview } from './DeliveryPreview';
import {
  emptyDraft,
  fromDefinition,
  MODES,
  newItem,
  SOURCES_FOR,
  toDefinition,
  type DeliveryDraft,
  type ItemDraft,
  type Mode,
  type RolloutDraft,
} from './deliveryForm';

/** One item: the object's name, how it reaches the pods, and where its values come from. */
function ItemFields(props: {
  index: number;
  item: ItemDraft;
  onChange: (item: ItemDraft) => void;
  onRemove?: () => void;
}) {
  const { item, index } = props;
  const set = (patch: Partial<ItemDraft>): void => props.onChange({ ...item, ...patch });
  const sources = SOURCES_FOR[item.mode];
  return (
    <fieldset className="item">
      <legend>Item {index + 1}</legend>
      <div className="row">
        <label>
          Object name
          <input value={item.name} onChange={(e) => set({ name: e.target.value })} required placeholder="shop-db" />
        </label>
        <label>
          Delivered as
          <select
            value={item.mode}
            onChange={(e) => {
              const mode = e.target.value as Mode;
              const keep = SOURCES_FOR[mode].some((s) => s.value === item.source);
              set({ mode, ...(keep ? {} : { source: SOURCES_FOR[mode][0]!.value }) });
            }}
          >
            {MODES.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Source
          <select value={item.source} onChange={(e) => set({ source: e.target.value as ItemDraft['source'] })}>
            {sources.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {item.source === 'literal' ? (
        <label>
          Values (KEY=value, one per line; not secret: anyone who can read the delivery sees them)
          <textarea rows={3} value={item.literal} onChange={(e) => set({ literal: e.target.value })} />
        </label>
      ) : (
        <div className="row">
          <label>
            {item.source === 'kv' ? 'KV mount' : 'Database mount'}
            <input value={item.mount} onChange={(e) => set({ mount: e.target.value })} required />
          </label>
          {item.source === 'kv' ? (
            <label>
              Secret path
              <input value={item.path} onChange={(e) => set({ path: e.target.value })} required placeholder="app/db" />
            </label>
          ) : (
            <label>
              Role
              <input value={item.role} onChange={(e) => set({ role: e.target.value })} required />
            </label>
          )}
          <label>
            Keys (comma-separated; empty for all)
            <input
              value={item.keys}
              onChange={(e) => set({ keys: e.target.value })}
              placeholder={item.source === 'kv' ? 'password' : 'username, password'}
            />
          </label>
        </div>
      )}
      <div className="row">
        {item.mode === 'secret' ? (
          <label>
            Secret type (optional)
            <input value={item.type} onChange={(e) => set({ type: e.target.value })} placeholder="Opaque" />
          </label>
        ) : null}
        <label className="check">
          <input type="checkbox" checked={item.immutable} onChange={(e) => set({ immutable: e.target.checked })} />
          Immutable
        </label>
        {props.onRemove ? (
          <button type="button" onClick={props.onRemove}>
            Remove item {index + 1}
          </button>
        ) : null}
      </div>
    </fieldset>
  );
}

function RolloutFields(props: { targets: RolloutDraft[]; onChange: (targets: RolloutDraft[]) => void }) {
  const { targets } = props;
  const update = (i: number, patch: Partial<RolloutDraft>): void =>
    props.onChange(targets.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  return (
    <fieldset>
      <legend>Workloads rolled on each change</legend>
      {targets.map((t, i) => (
        <div className="row" key={i}>
          <label>
            Kind of workload {i + 1}
            <select value={t.kind} onChange={(e) => update(i, { kind: e.target.value as RolloutDraft['kind'] })}>
              <option>Deployment</option>
              <option>StatefulSet</option>
              <option>DaemonSet</option>
            </select>
          </label>
          <label>
            Name of workload {i + 1}
            <input value={t.name} onChange={(e) => update(i, { name: e.target.value })} required />
          </label>
          <button type="button" onClick={() => props.onChange(targets.filter((_, j) => j !== i))}>
            Remove workload {i + 1}
          </button>
        </div>
      ))}
      <button type="button" onClick={() => props.onChange([...targets, { kind: 'Deployment', name: '' }])}>
        Add a workload
      </button>
    </fieldset>
  );
}

/** A delivery: compose its items, preview the objects the server would make, save it, or delete it. */
export function DeliveryEditor(props: { name: string }) {
  const { name } = props;
  const stored = useAsync(async () => {
    try {
      return (await call('GET', `sys/cofre/deliveries/${name}`)).data as Json;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  }, [name]);
  const [draft, setDraft] = useState<DeliveryDraft>(emptyDraft);
  const [preview, setPreview] = useState<Json>();
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  useEffect(() => {
    if (stored.data) setDraft(fromDefinition(stored.data));
  }, [stored.data]);

  const change = (next: DeliveryDraft): void => {
    setDraft(next);
    setPreview(undefined); // a preview of another definition would mislead
  };
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
      setPreview((await call('PUT', `sys/cofre/deliveries/${name}/preview`, { body: toDefinition(draft) })).data);
    });
  const save = (e: FormEvent): Promise<void> => {
    e.preventDefault();
    return run(async () => {
      const res = await call('PUT', `sys/cofre/deliveries/${name}`, { body: toDefinition(draft) });
      setStatus(`Saved ${name}: revision ${res.data.revision}.`);
      if (res.data.source_error) setError(new Error(`Saved, but it cannot be built yet: ${res.data.source_error}`));
      await stored.reload();
    });
  };
  const exists = stored.data !== null && stored.data !== undefined;
  const objects = (stored.data?.items ?? []) as Json[];

  return (
    <section aria-labelledby="page-title">
      <PageHeader
        trail={[['Deliveries', ['deliveries']]]}
        title={exists ? `Delivery ${name}` : `New delivery ${name}`}
      />
      <ErrorNotice error={stored.error} title="The delivery could not be read" />
      {stored.loading && stored.data === undefined ? <p role="status">Loading…</p> : null}
      {exists ? (
        <p>
          Revision {stored.data.revision}, last changed {new Date(stored.data.updated_at).toLocaleString()}.{' '}
          <Link to={['deliveries', name, 'map']}>Where it runs: the lifecycle map</Link>
          {' · '}
          <Link to={['placements']}>Publish it with a placement</Link>
        </p>
      ) : null}
      {stored.data !== undefined ? (
        <form className="editor" onSubmit={(e) => void save(e)}>
          <label>
            Namespace
            <input
              value={draft.namespace}
              onChange={(e) => change({ ...draft, namespace: e.target.value })}
              required
              placeholder="shop"
            />
          </label>
          {draft.items.map((item, i) => (
            <ItemFields
              key={i}
              index={i}
              item={item}
              onChange={(next) => change({ ...draft, items: draft.items.map((it, j) => (j === i ? next : it)) })}
              {...(draft.items.length > 1
                ? { onRemove: () => change({ ...draft, items: draft.items.filter((_, j) => j !== i) }) }
                : {})}
            />
          ))}
          <div className="actions">
            <button type="button" onClick={() => change({ ...draft, items: [...draft.items, newItem()] })}>
              Add an item
            </button>
          </div>
          <RolloutFields targets={draft.rollout} onChange={(rollout) => change({ ...draft, rollout })} />
          <label>
            Grace period for replaced database credentials (optional)
            <input
              value={draft.gracePeriod}
              onChange={(e) => change({ ...draft, gracePeriod: e.target.value })}
              placeholder="30m"
            />
          </label>
          <div className="actions">
            <button type="button" onClick={() => void showPreview()}>
              Preview the objects
            </button>
            <button type="submit" className="primary">
              Save
            </button>
          </div>
        </form>
      ) : null}
      <p role="status" className="status">
        {status}
      </p>
      <ErrorNotice error={error} title="The server refused" />
      {preview ? <DeliveryPreview preview={preview} /> : null}
      {exists ? (
        <div className="actions">
          <ConfirmButton
            danger
            label="Delete this delivery"
            consequence={`Delivery ${name} will be deleted. Every cluster it is placed on deletes what it made in namespace ${stored.data.namespace} (${objects.map((o) => o.name).join(', ')}), and its placements then name a missing delivery.`}
            confirmLabel="Delete the delivery"
            onConfirm={() =>
              run(async () => {
                await call('DELETE', `sys/cofre/deliveries/${name}`);
                navigate(['deliveries']);
              })
            }
          />
        </div>
      ) : null}
    </section>
  );
}

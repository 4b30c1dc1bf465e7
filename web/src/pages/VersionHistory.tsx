import { ConfirmButton } from '../components/ConfirmButton';
import type { SecretMetadata, VersionAction } from '../kv';

const when = (iso: string): string => (iso && !iso.startsWith('0001') ? new Date(iso).toLocaleString() : '');

function stateOf(v: { deletionTime: string; destroyed: boolean }): string {
  if (v.destroyed) return 'destroyed';
  if (when(v.deletionTime) && new Date(v.deletionTime).getTime() <= Date.now())
    return `deleted ${when(v.deletionTime)}`;
  if (when(v.deletionTime)) return `deleted at ${when(v.deletionTime)} (scheduled)`;
  return 'live';
}

/** The secret's own metadata: when it was created and last written, and its custom metadata (never values). */
export function MetadataList(props: { meta: SecretMetadata }) {
  const { meta } = props;
  const custom = Object.entries(meta.customMetadata);
  return (
    <dl className="metadata">
      <dt>Created</dt>
      <dd>{when(meta.createdTime)}</dd>
      <dt>Last written</dt>
      <dd>{when(meta.updatedTime)}</dd>
      <dt>Oldest version kept</dt>
      <dd>{meta.oldestVersion || 1}</dd>
      <dt>Custom metadata</dt>
      <dd>{custom.length === 0 ? 'none' : custom.map(([k, v]) => `${k}=${v}`).join(', ')}</dd>
    </dl>
  );
}

/** Every version kept (KV v2 metadata), with view, soft delete, undelete and destroy, each confirmed. */
export function VersionHistory(props: {
  path: string;
  meta: SecretMetadata;
  viewing: number;
  onView: (version: number) => void;
  onAction: (action: VersionAction, version: number) => Promise<void>;
}) {
  const { meta, path } = props;
  return (
    <table className="versions">
      <caption>
        Versions of {path}: current {meta.currentVersion}
        {meta.maxVersions ? `, the latest ${meta.maxVersions} kept` : ''}
        {meta.casRequired ? '; check-and-set required' : ''}
      </caption>
      <thead>
        <tr>
          <th scope="col">Version</th>
          <th scope="col">Created</th>
          <th scope="col">State</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {meta.versions.map((v) => {
          const state = stateOf(v);
          return (
            <tr key={v.version} aria-current={v.version === props.viewing ? 'true' : undefined}>
              <th scope="row">
                {v.version}
                {v.version === meta.currentVersion ? <span className="badge">current</span> : null}
              </th>
              <td>{when(v.createdTime)}</td>
              <td>{state}</td>
              <td className="actions">
                <button type="button" disabled={v.version === props.viewing} onClick={() => props.onView(v.version)}>
                  View<span className="sr-only"> version {v.version}</span>
                </button>
                {state === 'live' ? (
                  <ConfirmButton
                    label={`Delete version ${v.version}`}
                    consequence={`Version ${v.version} of ${path} will be deleted: its values can no longer be read, but undelete brings them back.`}
                    confirmLabel={`Delete version ${v.version}`}
                    onConfirm={() => props.onAction('delete', v.version)}
                  />
                ) : null}
                {state.startsWith('deleted') ? (
                  <ConfirmButton
                    label={`Undelete version ${v.version}`}
                    consequence={`Version ${v.version} of ${path} will be readable again.`}
                    confirmLabel={`Undelete version ${v.version}`}
                    onConfirm={() => props.onAction('undelete', v.version)}
                  />
                ) : null}
                {!v.destroyed ? (
                  <ConfirmButton
                    danger
                    label={`Destroy version ${v.version}`}
                    consequence={`Version ${v.version} of ${path} will be destroyed: its values are erased for good and no undelete can bring them back.`}
                    confirmLabel={`Destroy version ${v.version} for good`}
                    onConfirm={() => props.onAction('destroy', v.version)}
                  />
                ) : null}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

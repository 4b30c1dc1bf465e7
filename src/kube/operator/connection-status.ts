// The Ready condition of CofreConnections and ClusterCofreConnections: True once the operator reached the server
// and logged in through it, False with the reason and message of what failed (which the CRDs' Ready and Reason
// columns show). A connection is used by one identity per namespace and service account (a cluster-wide one by
// many): it is Ready while every identity that used it last succeeded. Status is written only when the condition
// changes, so a cold sync of a thousand CofreSecrets through one connection writes it once.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Identity } from './cofre-client.js';
import type { ConnectionKind } from './connections.js';
import { kubeCode, kubeMessage } from './errors.js';
import type { Log } from './log.js';
import { GROUP, VERSION, type CofreConnection, type Condition } from './types.js';

export type ConnectionReason = 'LoggedIn' | 'LoginFailed' | 'TokenRequestFailed' | 'Unreachable';

export interface LoginOutcome {
  ok: boolean;
  reason: ConnectionReason;
  /** Names addresses, roles and service accounts, never a token. */
  message: string;
}

interface Tracked {
  generation: number;
  /** The latest outcome of each identity (namespace and service account) that used the connection. */
  outcomes: Map<string, LoginOutcome>;
  writing?: Promise<void>;
  dirty: boolean;
}

type Ready = Pick<Condition, 'status' | 'reason' | 'message'>;

export class ConnectionStatus {
  private readonly custom: CustomObjectsApi;
  private readonly tracked = new Map<string, Tracked>();

  constructor(
    kc: KubeConfig,
    private readonly deps: {
      lookup: (kind: ConnectionKind, namespace: string, name: string) => CofreConnection | undefined;
      log: Log;
    },
  ) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  /** What the last login (or request) through `id` found; writes the connection's status if that changes it. */
  report(id: Identity, outcome: LoginOutcome): void {
    const generation = id.connectionGeneration ?? 0;
    let t = this.tracked.get(id.connection);
    // A new generation may name another server or role: what the old one found no longer says anything.
    if (!t || t.generation !== generation) {
      t = { generation, outcomes: new Map(), dirty: false };
      this.tracked.set(id.connection, t);
    }
    const before = t.outcomes.get(id.key);
    if (before && before.ok === outcome.ok && before.reason === outcome.reason && before.message === outcome.message)
      return;
    t.outcomes.set(id.key, outcome);
    this.schedule(id, t);
  }

  /** Waits for status writes in flight (the operator is stopping). */
  async settle(): Promise<void> {
    await Promise.all([...this.tracked.values()].map((t) => t.writing));
  }

  /** One write at a time per connection; outcomes that arrive meanwhile are folded into one more write. */
  private schedule(id: Identity, t: Tracked): void {
    if (t.writing) {
      t.dirty = true;
      return;
    }
    t.writing = (async () => {
      do {
        t.dirty = false;
        await this.write(id, t).catch((err: unknown) =>
          this.deps.log(
            'could not update CofreConnection status',
            { connection: id.connection, error: kubeMessage(err) },
            'warn',
          ),
        );
      } while (t.dirty);
    })().finally(() => (t.writing = undefined));
  }

  private async write(id: Identity, t: Tracked): Promise<void> {
    const { kind, namespace, name } = id.connectionRef;
    const conn = this.deps.lookup(kind, namespace, name);
    // Gone, or already changed again (its next reconciles report for the new generation).
    if (!conn || (conn.metadata?.generation ?? 0) !== t.generation) return;
    const ready = readyOf(id, t);
    const old = conn.status?.conditions?.find((c) => c.type === 'Ready');
    if (
      old?.status === ready.status &&
      old.reason === ready.reason &&
      old.message === ready.message &&
      old.observedGeneration === t.generation
    )
      return;
    const condition: Condition = {
      type: 'Ready',
      ...ready,
      observedGeneration: t.generation,
      lastTransitionTime: old && old.status === ready.status ? old.lastTransitionTime : new Date().toISOString(),
    };
    const status = {
      observedGeneration: t.generation,
      conditions: [...(conn.status?.conditions ?? []).filter((c) => c.type !== 'Ready'), condition],
    };
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    try {
      if (kind === 'ClusterCofreConnection') {
        await this.custom.patchClusterCustomObjectStatus(
          { group: GROUP, version: VERSION, plural: 'clustercofreconnections', name, body: { status } },
          merge,
        );
      } else {
        await this.custom.patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: 'cofreconnections', name, body: { status } },
          merge,
        );
      }
    } catch (err) {
      if (kubeCode(err) === 404) return; // deleted meanwhile
      throw err;
    }
    // Our copy, until the informer brings the object back: the next comparison sees what was just written.
    conn.status = { ...conn.status, ...status };
    if (ready.status === 'False') {
      this.deps.log('CofreConnection not ready', { connection: id.connection, reason: ready.reason }, 'warn');
    }
  }
}

function readyOf(id: Identity, t: Tracked): Ready {
  const outcomes = [...t.outcomes.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, o]) => o);
  const failing = outcomes.filter((o) => !o.ok);
  const several = outcomes.length > 1;
  if (failing.length === 0) {
    return {
      status: 'True',
      reason: 'LoggedIn',
      message: `logged in to ${id.address} as role "${id.role}"${several ? ` from ${outcomes.length} namespaces` : ''}`,
    };
  }
  const first = failing[0]!;
  return {
    status: 'False',
    reason: first.reason,
    message: several ? `${first.message} (${failing.length} of ${outcomes.length} namespaces fail)` : first.message,
  };
}

// The CofreConnections and ClusterCofreConnections the operator knows, from two informers: a reconcile looks its
// connection up here instead of asking the API server each time, and a connection's change (a new generation, or
// its creation or deletion) re-runs the CofreSecrets that use it.
import {
  CustomObjectsApi,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
} from '@kubernetes/client-node';
import { kubeMessage } from './errors.js';
import type { Log } from './log.js';
import { GROUP, VERSION, type CofreConnection } from './types.js';

export type ConnectionKind = 'CofreConnection' | 'ClusterCofreConnection';

/** "CofreConnection/<namespace>/<name>" or "ClusterCofreConnection/<name>": how identities and status name one. */
export function connectionKey(kind: ConnectionKind, namespace: string, name: string): string {
  return kind === 'ClusterCofreConnection' ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}

interface Watched {
  kind: ConnectionKind;
  informer: Informer<CofreConnection>;
  cache: { get(name: string, namespace?: string): CofreConnection | undefined };
}

export class Connections {
  private readonly watched: Watched[];
  private readonly generations = new Map<string, number | undefined>();
  private stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly opts: {
      /** Namespaced connections of this namespace only (the operator's --namespace); all when absent. */
      namespace?: string;
      /** A connection appeared, changed its spec, or went away. */
      onChange: (key: string) => void;
      log: Log;
    },
  ) {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const base = `/apis/${GROUP}/${VERSION}`;
    const ns = opts.namespace;
    const namespaced = makeInformer<CofreConnection>(
      kc,
      ns ? `${base}/namespaces/${ns}/cofreconnections` : `${base}/cofreconnections`,
      async () =>
        (ns
          ? await custom.listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              namespace: ns,
              plural: 'cofreconnections',
            })
          : await custom.listClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural: 'cofreconnections',
            })) as KubernetesListObject<CofreConnection>,
    );
    const clusterWide = makeInformer<CofreConnection>(
      kc,
      `${base}/clustercofreconnections`,
      async () =>
        (await custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: 'clustercofreconnections',
        })) as KubernetesListObject<CofreConnection>,
    );
    this.watched = [
      { kind: 'CofreConnection', informer: namespaced, cache: namespaced as unknown as Watched['cache'] },
      { kind: 'ClusterCofreConnection', informer: clusterWide, cache: clusterWide as unknown as Watched['cache'] },
    ];
    for (const w of this.watched) this.listen(w);
  }

  /** Resolves once both informers have their first list, so the first reconciles find their connections. */
  async start(): Promise<void> {
    await Promise.all(this.watched.map((w) => w.informer.start()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.watched.map((w) => w.informer.stop()));
  }

  get(kind: ConnectionKind, namespace: string, name: string): CofreConnection | undefined {
    const w = this.watched.find((x) => x.kind === kind)!;
    return kind === 'ClusterCofreConnection' ? w.cache.get(name) : w.cache.get(name, namespace);
  }

  private listen({ kind, informer }: Watched): void {
    const keyOf = (conn: CofreConnection): string =>
      connectionKey(kind, conn.metadata?.namespace ?? '', conn.metadata?.name ?? '');
    informer.on('add', (conn) => {
      this.generations.set(keyOf(conn), conn.metadata?.generation);
      this.opts.onChange(keyOf(conn));
    });
    // The operator's own status writes come back as updates of the same generation: nothing to re-run.
    informer.on('update', (conn) => {
      const key = keyOf(conn);
      if (this.generations.get(key) === conn.metadata?.generation) return;
      this.generations.set(key, conn.metadata?.generation);
      this.opts.onChange(key);
    });
    informer.on('delete', (conn) => {
      this.generations.delete(keyOf(conn));
      this.opts.onChange(keyOf(conn));
    });
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.opts.log(`${kind} watch failed; restarting`, { error: kubeMessage(err) }, 'warn');
      setTimeout(() => {
        if (this.stopped) return;
        informer
          .start()
          .catch((e: unknown) =>
            this.opts.log(`restarting the ${kind} watch failed`, { error: kubeMessage(e) }, 'error'),
          );
      }, 2_000).unref();
    });
  }
}

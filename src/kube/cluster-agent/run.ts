// The cluster agent as a running process (what `cofre cluster-agent` starts): keys from the cluster, an enrolment
// kept in a Secret so a restart needs no bootstrap token, a login kept fresh, the stream followed (the protocol
// client reconnects and every connection's `hello` catches up), each event handed to AgentLoop, and a report after
// each change and every `reportIntervalMs` with the lifecycle maps. Log lines name clusters, deliveries and
// revisions, never a value, token or key.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { TlsSettings } from '../../client/index.js';
import { kubeCode, kubeMessage } from '../operator/errors.js';
import { AgentLoop } from './agent.js';
import { DeliveryApplier } from './apply.js';
import { loadOrCreateAgentKeys } from './keys.js';
import { LifecycleReader } from './lifecycle.js';
import { AgentProtocol, describeAgentError, enrol, type AgentStream, type DeliveryReport } from './protocol.js';

/** The Secret (beside the keys Secret) that keeps this cluster's enrolment: its `cluster_id`. */
export const ENROLMENT_SECRET = 'cofre-cluster-agent-enrolment';

export interface ClusterAgentOptions extends TlsSettings {
  address: string;
  kubeConfig: KubeConfig;
  /** The agent's own namespace: where its keys and enrolment Secrets live. */
  namespace: string;
  /** The namespaces it may deliver to, when its RBAC is namespaced (the chart's clusterAgent.namespaces). */
  deliveryNamespaces?: string[];
  /** Needed for the first enrolment only. */
  bootstrapToken?: string;
  agentVersion: string;
  reportIntervalMs?: number;
  log: (msg: string, fields?: object) => void;
}

export interface RunningAgent {
  clusterId: string;
  /** True once a stream's `hello` has been applied (readiness). */
  ready(): boolean;
  stop(): Promise<void>;
}

/** Reads the enrolled cluster id; undefined when this cluster has not enrolled yet. */
async function readEnrolment(core: CoreV1Api, namespace: string): Promise<string | undefined> {
  try {
    const secret = await core.readNamespacedSecret({ name: ENROLMENT_SECRET, namespace });
    const id = secret.data?.cluster_id;
    return id ? Buffer.from(id, 'base64').toString('utf8') : undefined;
  } catch (err) {
    if (kubeCode(err) === 404) return undefined;
    throw new Error(`reading Secret ${namespace}/${ENROLMENT_SECRET}: ${kubeMessage(err)}`);
  }
}

async function saveEnrolment(core: CoreV1Api, namespace: string, clusterId: string, name: string): Promise<void> {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  try {
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: {
          name: ENROLMENT_SECRET,
          labels: { 'app.kubernetes.io/name': 'cofre-cluster-agent', 'app.kubernetes.io/component': 'enrolment' },
        },
        type: 'Opaque',
        data: { cluster_id: b64(clusterId), cluster_name: b64(name) },
      },
    });
  } catch (err) {
    throw new Error(`saving Secret ${namespace}/${ENROLMENT_SECRET}: ${kubeMessage(err)}`);
  }
}

export async function runClusterAgent(opts: ClusterAgentOptions): Promise<RunningAgent> {
  const { log, kubeConfig, namespace } = opts;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const { keys, created } = await loadOrCreateAgentKeys(kubeConfig, namespace);
  log(created ? 'agent keys generated' : 'agent keys loaded', { namespace, fingerprints: keys.fingerprints() });

  let clusterId = await readEnrolment(core, namespace);
  if (!clusterId) {
    if (!opts.bootstrapToken)
      throw new Error('this cluster is not enrolled yet: give -bootstrap-token (or COFRE_BOOTSTRAP_TOKEN)');
    const tls = { caCert: opts.caCert, caCertBytes: opts.caCertBytes, tlsSkipVerify: opts.tlsSkipVerify };
    const answer = await enrol(
      { address: opts.address, ...tls },
      opts.bootstrapToken,
      { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey },
      opts.agentVersion,
    );
    clusterId = answer.cluster_id;
    await saveEnrolment(core, namespace, clusterId, answer.name);
    log('cluster enrolled', { cluster_id: clusterId, name: answer.name });
  } else log('cluster enrolment loaded', { cluster_id: clusterId });

  const protocol = new AgentProtocol({
    address: opts.address,
    caCert: opts.caCert,
    caCertBytes: opts.caCertBytes,
    tlsSkipVerify: opts.tlsSkipVerify,
    clusterId,
    keys,
  });
  const loop = new AgentLoop({
    clusterId,
    keys,
    applier: new DeliveryApplier(kubeConfig, log),
    lifecycle: new LifecycleReader(kubeConfig),
    kubeConfig,
    ...(opts.deliveryNamespaces ? { namespaces: opts.deliveryNamespaces } : {}),
    fetchBundle: (delivery) => protocol.fetchBundle(delivery),
    log,
  });

  let stopped = false;
  let caughtUp = false;
  let connected = false;
  // Reports run one at a time; a change while one runs asks for one more after it.
  let reporting: Promise<void> | undefined;
  let again = false;
  const sendReport = async (): Promise<void> => {
    const deliveries: Record<string, DeliveryReport> = await loop.report();
    const failed = Object.values(deliveries).some((d) => d.error);
    await protocol.report({ agent_version: opts.agentVersion, health: failed ? 'degraded' : 'ok', deliveries });
  };
  const report = (): void => {
    if (stopped) return;
    if (reporting) {
      again = true;
      return;
    }
    reporting = sendReport()
      .catch((err: unknown) => log('report failed', { error: describeAgentError(err) }))
      .finally(() => {
        reporting = undefined;
        if (again) {
          again = false;
          report();
        }
      });
  };

  const stream: AgentStream = protocol.stream({
    onHello: (set) => {
      log('stream connected; catching up', { deliveries: set.length });
      loop.hello(set).then(
        () => {
          caughtUp = true;
          report();
        },
        // Listing what the cluster holds failed (RBAC, the API server): the next hello tries again.
        (err: unknown) => log('catching up failed', { error: (err as Error).message }),
      );
    },
    onDelivery: (event) => {
      log('delivery changed', { delivery: event.delivery, revision: event.revision });
      loop.change(event).then(report, (err: unknown) => log('change failed', { error: (err as Error).message }));
    },
    onConnected: (now) => {
      if (connected && !now && !stopped) log('stream disconnected; reconnecting');
      connected = now;
    },
    log,
  });

  // The periodic report carries the lifecycle maps as pods roll; it also logs in again ahead of the token's expiry.
  // While disconnected (server down, cluster refused) the stream's reconnects say what is wrong; no report then.
  const timer = setInterval(() => connected && report(), opts.reportIntervalMs ?? 30_000);
  timer.unref();
  log('cluster agent started', { cluster_id: clusterId, address: opts.address });

  return {
    clusterId,
    ready: () => caughtUp && connected,
    async stop() {
      stopped = true;
      clearInterval(timer);
      stream.close();
      await reporting;
      log('cluster agent stopped');
    },
  };
}

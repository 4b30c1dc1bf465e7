// Kubernetes Events about a CofreSecret (core/v1, what `kubectl describe` shows). Messages come from the reconciler
// and name paths and versions, never values. Failures to record are logged and otherwise ignored: an Event is a
// courtesy, never a reason to fail a sync.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { kubeMessage } from './errors.js';
import type { Log } from './log.js';
import { API_VERSION, type CofreSecret } from './types.js';

export class EventRecorder {
  private readonly core: CoreV1Api;
  constructor(
    kc: KubeConfig,
    private readonly log: Log,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async record(cs: CofreSecret, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    const namespace = cs.metadata!.namespace!;
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: {
            name: `${cs.metadata!.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`,
            namespace,
          },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: 'CofreSecret',
            name: cs.metadata!.name,
            namespace,
            uid: cs.metadata!.uid,
            resourceVersion: cs.metadata!.resourceVersion,
          },
          type,
          reason,
          message,
          source: { component: 'cofre-operator' },
          reportingComponent: 'cofre.dev/operator',
          reportingInstance: process.env.HOSTNAME ?? 'cofre-operator',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log(
        'could not record an Event',
        {
          cofreSecret: `${namespace}/${cs.metadata!.name}`,
          reason,
          error: kubeMessage(err),
        },
        'warn',
      );
    }
  }
}

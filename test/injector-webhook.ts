import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { INJECT_LABEL } from '../src/kube/injector/contract.js';

/**
 * The MutatingWebhookConfiguration the chart installs (charts/cofre/templates/injector-webhook.yaml), pointed at an
 * injector listening on loopback with a certificate signed by `caPem`: what the tests and the benchmark register.
 */
export function loopbackWebhook(name: string, port: number, caPem: string): V1MutatingWebhookConfiguration {
  return {
    metadata: { name },
    webhooks: [
      {
        name: 'inject.cofre.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 10,
        objectSelector: { matchLabels: { [INJECT_LABEL]: 'true' } },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
        clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(caPem).toString('base64') },
      },
    ],
  };
}

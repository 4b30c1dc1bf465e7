import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

const crdDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'charts', 'cofre', 'crds');

/** Installs the chart's CRDs (as Helm's crds/ does) and waits until the API server serves them. */
export async function installCrds(kc: k8s.KubeConfig, timeoutMs = 20_000): Promise<void> {
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const names: string[] = [];
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of k8s.loadAllYaml(
      readFileSync(path.join(crdDir, file), 'utf8'),
    ) as k8s.V1CustomResourceDefinition[]) {
      await ext.createCustomResourceDefinition({ body: doc });
      names.push(doc.metadata!.name!);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

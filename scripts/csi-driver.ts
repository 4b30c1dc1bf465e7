// The real Secrets Store CSI Driver (sigs.k8s.io/secrets-store-csi-driver) for test/csi-driver.test.ts: its node
// plugin binary, built once by scripts/csi-driver-binary.sh, and what the release ships beside it (the CRDs, RBAC
// and CSIDriver manifests of deploy/, and the CSI spec's csi.proto), applied and loaded as an installer and the
// kubelet would.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface CsiDriverBuild {
  /** The node plugin (cmd/secrets-store-csi-driver). */
  binary: string;
  /** The release's deploy/ manifests kept with the build. */
  deployDir: string;
  /** The CSI spec's csi.proto, at the version the driver's go.mod requires. */
  csiProto: string;
  /** How it was built (what, if anything, was replaced; see scripts/csi-driver-binary.sh). */
  notes: string;
}

let build: Promise<CsiDriverBuild> | undefined;

/** Runs scripts/csi-driver-binary.sh once per process; its progress (a first build takes minutes) goes to stderr. */
export function csiDriverBuild(): Promise<CsiDriverBuild> {
  build ??= new Promise<CsiDriverBuild>((resolve, reject) => {
    const child = spawn('bash', [path.join(here, 'csi-driver-binary.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const binary = out.trim();
      if (code !== 0 || !binary)
        return reject(
          new Error(
            `scripts/csi-driver-binary.sh failed (exit ${code}; its messages are above). It builds the Secrets ` +
              `Store CSI Driver with the Go toolchain (https://go.dev/dl/) and the Go module proxy.`,
          ),
        );
      const dir = path.dirname(binary);
      resolve({
        binary,
        deployDir: path.join(dir, 'deploy'),
        csiProto: path.join(dir, 'csi.proto'),
        notes: readFileSync(path.join(dir, 'build-notes'), 'utf8').trim(),
      });
    });
  });
  return build;
}

/**
 * Creates every object of the manifests, as `kubectl create -f` does, and waits until the API server serves the
 * CRDs among them (Established).
 */
export async function createManifests(kc: k8s.KubeConfig, files: string[], timeoutMs = 20_000): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const crds: string[] = [];
  for (const file of files)
    for (const doc of k8s.loadAllYaml(readFileSync(file, 'utf8')) as k8s.KubernetesObject[]) {
      if (!doc) continue;
      await objects.create(doc);
      if (doc.kind === 'CustomResourceDefinition') crds.push(doc.metadata!.name!);
    }
  const deadline = Date.now() + timeoutMs;
  for (const name of crds)
    for (;;) {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
}

/** The release's CRD manifests (SecretProviderClass, SecretProviderClassPodStatus) in `deployDir`. */
export function crdFiles(deployDir: string): string[] {
  return readdirSync(deployDir)
    .filter((f) => f.startsWith('secrets-store.csi.x-k8s.io_') && f.endsWith('.yaml'))
    .map((f) => path.join(deployDir, f));
}

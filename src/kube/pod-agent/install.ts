// `install_to`: copies a runtime for `cofre agent exec` into a volume the application containers mount, so that any
// x86-64 Linux image, even one FROM scratch with no shell or libc, can run EXEC_PREFIX (contract.ts):
//   ld.so          the dynamic loader this agent's Node.js runs with
//   lib/           the shared libraries this process has loaded (read from /proc/self/maps), under their sonames
//   node           this Node.js binary
//   app/cofre.js   the agent as one ESM file (app/package.json says "type": "module")
// The bundle is the prebuilt dist/agent/cofre.js when the image has one, else built now with esbuild from the
// sources next to this file (a development checkout; esbuild comes with tsx).
import { chmod, copyFile, mkdir, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export class InstallError extends Error {}

/** The repository (or image) root: three levels up from src/kube/pod-agent or dist/kube/pod-agent. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PREBUILT_BUNDLE = path.join(ROOT, 'dist/agent/cofre.js');

/** The files this process maps: the loader and the shared libraries (not Node addons, not the binary itself). */
export async function loadedLibraries(): Promise<{ loader: string; libraries: string[] }> {
  const maps = await readFile('/proc/self/maps', 'utf8');
  const files = new Set<string>();
  for (const line of maps.split('\n')) {
    const file = line.split(/\s+/).slice(5).join(' ');
    if (file.startsWith('/') && /\.so(\.\d+)*$/.test(file)) files.add(file);
  }
  const loader = [...files].find((f) => /^ld-(linux|musl)[\w.-]*\.so/.test(path.basename(f)));
  if (!loader) throw new InstallError('found no dynamic loader in /proc/self/maps: is this Node.js static?');
  files.delete(loader);
  return { loader, libraries: [...files].sort() };
}

/**
 * The names a library is loaded by: the mapped file is the real one (libstdc++.so.6.0.30), Node asks for its
 * soname (libstdc++.so.6), a symlink to it in the same directory.
 */
async function namesOf(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const stem = base.slice(0, base.indexOf('.so') + 3);
  const names = new Set([base]);
  for (const entry of await readdir(dir)) {
    if (!entry.startsWith(stem) || entry === base) continue;
    const target = await realpath(path.join(dir, entry)).catch(() => '');
    if (target === file) names.add(entry);
  }
  return [...names];
}

async function bundle(outFile: string): Promise<void> {
  if (existsSync(PREBUILT_BUNDLE)) {
    await copyFile(PREBUILT_BUNDLE, outFile);
    return;
  }
  await buildBundle(outFile);
}

/** Bundles the agent's entry point (src/cli/agent-main.ts, or its build in dist/) into one ESM file. */
export async function buildBundle(outFile: string): Promise<void> {
  const entry = [path.join(ROOT, 'src/cli/agent-main.ts'), path.join(ROOT, 'dist/cli/agent-main.js')].find((f) =>
    existsSync(f),
  );
  if (!entry) throw new InstallError(`no agent bundle at ${PREBUILT_BUNDLE} and no sources to build one from`);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new InstallError(`no agent bundle at ${PREBUILT_BUNDLE}, and esbuild is not installed to build one`);
  }
  await esbuild.build({
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    // CommonJS dependencies inside an ESM bundle still call require().
    banner: {
      js: "import { createRequire as __cofreRequire } from 'node:module'; const require = __cofreRequire(import.meta.url);",
    },
  });
}

/** Installs the exec runtime into `dir`, replacing what was there; returns what it copied (file names only). */
export async function installExecRuntime(dir: string): Promise<{ files: number }> {
  const { loader, libraries } = await loadedLibraries();
  // Staged inside the target (a volume: the same file system, so the moves are renames), then moved in.
  const work = path.join(dir, '.staging');
  await rm(work, { recursive: true, force: true });
  await mkdir(path.join(work, 'lib'), { recursive: true });
  await mkdir(path.join(work, 'app'), { recursive: true });
  let files = 0;
  const copy = async (from: string, to: string, mode: number) => {
    await copyFile(from, to);
    await chmod(to, mode);
    files++;
  };
  await copy(loader, path.join(work, 'ld.so'), 0o755);
  await copy(await realpath(process.execPath), path.join(work, 'node'), 0o755);
  for (const lib of libraries) {
    for (const name of await namesOf(lib)) await copy(lib, path.join(work, 'lib', name), 0o755);
  }
  await bundle(path.join(work, 'app', 'cofre.js'));
  await writeFile(path.join(work, 'app', 'package.json'), '{ "type": "module" }\n');
  await chmod(path.join(work, 'app', 'cofre.js'), 0o755);
  files += 2;
  await moveIn(work, dir);
  return { files };
}

/** The target is usually a mount point (an emptyDir), which cannot be renamed over: move the entries one by one. */
async function moveIn(staging: string, dir: string): Promise<void> {
  for (const entry of await readdir(staging)) {
    await rm(path.join(dir, entry), { recursive: true, force: true });
    await rename(path.join(staging, entry), path.join(dir, entry));
  }
  await rm(staging, { recursive: true, force: true });
}

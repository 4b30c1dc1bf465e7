// Container images built on this machine without a registry, for the test node (scripts/test-node.ts):
//   - localhost/cofre-test/pause:1 and localhost/cofre-test/busybox:1, from Debian's busybox-static;
//   - localhost/cofre:dev, Cofre's own image: Node.js 24 (scripts/node-lts.sh), the built dist/ and the production
//     node_modules installed under that Node (better-sqlite3's addon must match its ABI), with `cofre` on PATH.
// The repository's Containerfile builds the same layout from node:24-bookworm-slim where a registry is reachable.
//
// Each image is built with `buildah from scratch` into an OCI archive, cached under
// ${COFRE_CACHE_DIR:-~/.cache/cofre}/images by a hash of everything that goes into it, so a second run is instant.
//
//   import { testImages, cofreImage } from '../scripts/build-image.js';   // archive paths, for TestNode.importImage
//   node --import tsx scripts/build-image.ts cofre|test [--import]   // prints the archive; --import loads it into
//                                                                    // the running test node's containerd
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync } from 'node:fs';
import { readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildBundle } from '../src/kube/pod-agent/install.js';

export const PAUSE_IMAGE = 'localhost/cofre-test/pause:1';
export const TEST_IMAGE = 'localhost/cofre-test/busybox:1';
export const COFRE_IMAGE = 'localhost/cofre:dev';
/** Where a from-scratch Cofre image keeps the application (the Containerfile uses the same path). */
export const COFRE_APP_DIR = '/usr/local/lib/cofre';

// Bump when the layout below changes, so cached archives built the old way are not reused.
const RECIPE = 'cofre-images-4';
const BUSYBOX = '/bin/busybox';
const execFileP = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(process.env.COFRE_CACHE_DIR ?? path.join(homedir(), '.cache', 'cofre'), 'images');
const log = (msg: string) => process.stderr.write(`build-image: ${msg}\n`);

/** Archives of the pause (sandbox) image and the busybox test image, built once. */
export async function testImages(): Promise<{ pause: string; busybox: string }> {
  requireTools();
  const hash = digest([RECIPE, readFileSync(BUSYBOX)]);
  const pause = path.join(cacheDir, `pause-${hash}.tar`);
  const busybox = path.join(cacheDir, `busybox-${hash}.tar`);
  if (existsSync(pause) && existsSync(busybox)) return { pause, busybox };
  await inWorkDir(async (work) => {
    const rootfs = path.join(work, 'rootfs');
    busyboxRootfs(rootfs);
    const b = buildah(work);
    await b.image(rootfs, busybox, TEST_IMAGE, ['--env', 'PATH=/bin', '--cmd', '["/bin/sh"]']);
    // The sandbox needs one process that sleeps: busybox alone, nothing else.
    const pauseRoot = path.join(work, 'pause');
    mkdirSync(path.join(pauseRoot, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, path.join(pauseRoot, 'bin', 'busybox'));
    chmodSync(path.join(pauseRoot, 'bin', 'busybox'), 0o755);
    await b.image(pauseRoot, pause, PAUSE_IMAGE, ['--entrypoint', '["/bin/busybox","sleep","2147483647"]']);
  });
  return { pause, busybox };
}

/** The archive of Cofre's image (localhost/cofre:dev) for the current sources, built when they changed. */
export async function cofreImage(): Promise<string> {
  requireTools();
  const nodeDir = (await execFileP('bash', [path.join(repo, 'scripts', 'node-lts.sh'), '24'])).stdout.trim();
  const inputs = [
    RECIPE,
    path.basename(nodeDir),
    readFileSync(BUSYBOX),
    ...['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => hostFile(f)),
    ...sourceFiles(path.join(repo, 'src')).flatMap((f) => [path.relative(repo, f), readFileSync(f)]),
    ...webSourceFiles().flatMap((f) => [path.relative(repo, f), readFileSync(f)]),
  ];
  const archive = path.join(cacheDir, `cofre-${digest(inputs)}.tar`);
  if (existsSync(archive)) return archive;
  log(`building ${COFRE_IMAGE} (Node.js ${path.basename(nodeDir)}) into ${archive}`);
  const started = Date.now();
  await inWorkDir(async (work) => {
    const rootfs = path.join(work, 'rootfs');
    busyboxRootfs(rootfs);
    const app = path.join(rootfs, COFRE_APP_DIR);
    mkdirSync(app, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(repo, f), path.join(app, f));

    // Production dependencies, installed with Node 24 so that better-sqlite3 compiles against its headers. Scripts
    // are off for the install (the package's own `prepare` runs tsc, a dev dependency) and on for the rebuild.
    const env = { ...process.env, PATH: `${nodeDir}/bin:${process.env.PATH}`, npm_config_nodedir: nodeDir };
    log('npm ci --omit=dev (Node.js 24)');
    await execFileP('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, env });
    log('npm rebuild better-sqlite3 pkcs11js (their native addons, for Node.js 24)');
    await execFileP('npm', ['rebuild', 'better-sqlite3', 'pkcs11js'], { cwd: app, env, maxBuffer: 16 << 20 });
    rmSync(path.join(app, 'package-lock.json'));

    log('tsc -p tsconfig.build.json');
    const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    await execFileP(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', path.join(app, 'dist')], {
      cwd: repo,
    });
    const main = path.join(app, 'dist', 'cli', 'main.js');
    chmodSync(main, 0o755);
    // The in-pod agent as one file, which `cofre agent -init` copies into a pod's volume (the production install has
    // no esbuild to bundle it there).
    log('agent bundle (dist/agent/cofre.js)');
    const agentBundle = path.join(app, 'dist', 'agent', 'cofre.js');
    mkdirSync(path.dirname(agentBundle), { recursive: true });
    await buildBundle(agentBundle);
    writeFileSync(path.join(path.dirname(agentBundle), 'package.json'), '{ "type": "module" }\n');
    // The web UI's static files, beside dist/ as src/http/ui.ts looks for them.
    log('web UI (npm run build -w web)');
    await execFileP('npm', ['run', 'build', '-w', 'web'], { cwd: repo, maxBuffer: 16 << 20 });
    cpSync(path.join(repo, 'web', 'dist'), path.join(app, 'web', 'dist'), { recursive: true });

    // node and what it loads: the binary, its dynamic loader and shared libraries at the paths ldd names (a
    // Debian-based image has them there too), and the same for the native addons.
    mkdirSync(path.join(rootfs, 'usr/local/bin'), { recursive: true });
    copyFileSync(path.join(nodeDir, 'bin', 'node'), path.join(rootfs, 'usr/local/bin/node'));
    chmodSync(path.join(rootfs, 'usr/local/bin/node'), 0o755);
    const addons = findFiles(path.join(app, 'node_modules'), (f) => f.endsWith('.node'));
    for (const binary of [path.join(nodeDir, 'bin', 'node'), ...addons])
      for (const lib of await sharedLibraries(binary)) copyFromHost(rootfs, lib);
    // `cofre` as npm would install it: a link to the script, whose `#!/usr/bin/env node` busybox's env serves.
    symlinkSync(path.relative(path.join(rootfs, 'usr/local/bin'), main), path.join(rootfs, 'usr/local/bin/cofre'));
    mkdirSync(path.join(rootfs, 'usr/bin'), { recursive: true });
    symlinkSync('/bin/busybox', path.join(rootfs, 'usr/bin/env'));
    // The user's home, theirs as in node:24-bookworm-slim (copied with --chown below; /home itself stays root's).
    mkdirSync(path.join(rootfs, 'home'));
    const home = path.join(work, 'home-node');
    mkdirSync(home);

    await buildah(work).image(
      rootfs,
      archive,
      COFRE_IMAGE,
      [
        ...['--env', 'PATH=/usr/local/bin:/usr/bin:/bin', '--env', 'NODE_ENV=production'],
        ...['--user', '1000:1000', '--workingdir', '/home/node'],
        ...['--entrypoint', '["cofre"]', '--cmd', '["--help"]'],
      ],
      { from: home, to: '/home/node', owner: '1000:1000' },
    );
  });
  log(`built ${COFRE_IMAGE} in ${Math.round((Date.now() - started) / 1000)} s`);
  return archive;
}

// ---------------------------------------------------------------------------------------------------------------

function requireTools(): void {
  const missing = [
    ['buildah', '/usr/bin/buildah'],
    ['busybox-static', BUSYBOX],
  ].filter(([, file]) => !existsSync(file!));
  if (missing.length > 0)
    throw new Error(
      `building the test images needs ${missing.map(([pkg]) => pkg).join(' and ')}: ` +
        `apt-get install -y ${missing.map(([pkg]) => pkg).join(' ')} (.ci/run installs them)`,
    );
}

function digest(parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:`).update(p);
  return h.digest('hex').slice(0, 16);
}

function hostFile(rel: string): Buffer {
  return readFileSync(path.join(repo, rel));
}

/** What the web UI's build is made of (not its output, web/dist, nor its node_modules). */
function webSourceFiles(): string[] {
  const web = path.join(repo, 'web');
  const top = ['package.json', 'index.html', 'tsconfig.json', 'vite.config.ts'].map((f) => path.join(web, f));
  return [...top.filter((f) => existsSync(f)), ...findFiles(path.join(web, 'src'), () => true)].sort();
}

function sourceFiles(dir: string): string[] {
  return findFiles(dir, (f) => f.endsWith('.ts') || f.endsWith('.json')).sort();
}

function findFiles(dir: string, keep: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, keep));
    else if (e.isFile() && keep(p)) out.push(p);
  }
  return out;
}

/** A temporary directory next to the cache (same filesystem, so the final rename is atomic), always removed. */
async function inWorkDir(fn: (work: string) => Promise<void>): Promise<void> {
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(path.join(cacheDir, '.build-'));
  try {
    await fn(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** busybox-static and its applets in /bin, a root and a `node` (1000) user, and a world-writable /tmp. */
function busyboxRootfs(rootfs: string): void {
  for (const d of ['bin', 'etc', 'tmp']) mkdirSync(path.join(rootfs, d), { recursive: true });
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) if (a !== 'busybox') symlinkSync('busybox', path.join(rootfs, 'bin', a));
  writeFileSync(
    path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n',
  );
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
  writeFileSync(path.join(rootfs, 'etc/nsswitch.conf'), 'hosts: files dns\n');
}

/** The absolute paths of the shared libraries (and the dynamic loader) that `binary` loads, as ldd resolves them. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await execFileP('ldd', [binary]);
  return [...stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/**
 * Copies a host file into rootfs at the same path, recreating every symlink on the way (e.g. /lib -> usr/lib on a
 * merged-/usr host, libstdc++.so.6 -> libstdc++.so.6.0.30) so the image resolves the path as the host does.
 */
function copyFromHost(rootfs: string, hostPath: string): void {
  const parts = hostPath.split('/').filter(Boolean);
  let cur = '/';
  for (const [i, part] of parts.entries()) {
    const next = path.join(cur, part);
    const dst = path.join(rootfs, next);
    const st = lstatSync(next);
    if (st.isSymbolicLink()) {
      const link = readlinkSync(next);
      if (!existsSync(dst) && !isLink(dst)) symlinkSync(link, dst);
      copyFromHost(rootfs, path.join(path.resolve(cur, link), ...parts.slice(i + 1)));
      return;
    }
    if (i < parts.length - 1) {
      if (!existsSync(dst)) mkdirSync(dst);
    } else if (!existsSync(dst)) {
      copyFileSync(next, dst);
      chmodSync(dst, st.mode & 0o7777);
    }
    cur = next;
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** buildah with its own throwaway storage (vfs: no mounts to undo) inside the work directory. */
function buildah(work: string) {
  const base = ['--root', path.join(work, 'storage'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs'];
  const run = async (args: string[]) => (await execFileP('buildah', [...base, ...args])).stdout.trim();
  return {
    /**
     * Builds an image of `rootfs` (owned by root) and `owned` (a directory owned by a user), with `config` (buildah
     * config flags), and writes it to `archive` atomically.
     */
    async image(
      rootfs: string,
      archive: string,
      tag: string,
      config: string[],
      owned?: { from: string; to: string; owner: string },
    ): Promise<void> {
      const c = await run(['from', 'scratch']);
      await run(['copy', c, `${rootfs}/`, '/']);
      if (owned) await run(['copy', '--chown', owned.owner, c, owned.from, owned.to]);
      await run(['config', ...config, c]);
      await run(['commit', '-q', c, tag]);
      const tmp = `${archive}.tmp`;
      rmSync(tmp, { force: true });
      await run(['push', '-q', tag, `oci-archive:${tmp}:${tag}`]);
      // Older archives of the same image are no longer wanted.
      const prefix = path.basename(archive).replace(/-[0-9a-f]+\.tar$/, '-');
      for (const old of readdirSync(cacheDir))
        if (old.startsWith(prefix) && old.endsWith('.tar')) rmSync(path.join(cacheDir, old), { force: true });
      renameSync(tmp, archive);
    },
  };
}

/** Loads an image archive into the test node's containerd (namespace k8s.io, where the kubelet looks). */
export async function importImage(socket: string, archive: string): Promise<void> {
  await execFileP('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', archive]);
}

async function cli(argv: string[]): Promise<void> {
  const [what] = argv;
  let archives: string[];
  if (what === 'cofre') archives = [await cofreImage()];
  else if (what === 'test') archives = Object.values(await testImages());
  else {
    console.error('usage: node --import tsx scripts/build-image.ts cofre|test [--import]');
    process.exitCode = 2;
    return;
  }
  if (argv.includes('--import')) {
    const { NODE_SOCKET } = await import('./test-node.js');
    for (const a of archives) await importImage(NODE_SOCKET, a);
  }
  for (const a of archives) console.log(a);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e: Error) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}

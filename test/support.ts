import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCofre, devDefaultMounts, type Cofre } from '../src/app.js';
import { stdio } from '../src/cli/output.js';
import { buildProgram, run } from '../src/cli/program.js';

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `cofre-${name}-`));
}

// Tests index freely into Vault's JSON responses; asserting on them is the point.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface Api {
  url: string;
  call(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: Json; text: string }>;
}

export function apiClient(url: string, defaultToken?: string): Api {
  return {
    url,
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const token = opts.token ?? defaultToken;
      if (token) headers['x-vault-token'] = token;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const send = () => fetch(`${url}/v1/${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      // A keep-alive connection to a server that has since restarted fails once; a new connection then works.
      const res = await send().catch((err: { cause?: { code?: string } }) => {
        if (err.cause?.code !== 'UND_ERR_SOCKET') throw err;
        return send();
      });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = text;
      }
      return { status: res.status, body: parsed, text };
    },
  };
}

export interface InProcessServer {
  cofre: Cofre;
  url: string;
  dir: string;
  api: Api;
  /** Key shares and root token when started initialised. */
  keys: string[];
  rootToken: string;
  stop(): Promise<void>;
}

/**
 * A real server in this process on a real SQLite file. `initialised` runs sys/init through the HTTP API and
 * unseals with the keys, as an operator would.
 */
export async function startServer(
  opts: {
    initialised?: boolean;
    shares?: number;
    threshold?: number;
    dir?: string;
    port?: number;
    /** Serve the web UI at /ui/, as dev mode does (with "/" redirected there): web/dist, or the directory named. */
    ui?: boolean | { dir: string };
    /** How often an idle event stream writes its heartbeat (the server's 15 s when unset). */
    streamHeartbeatMs?: number;
  } = {},
): Promise<InProcessServer> {
  const dir = opts.dir ?? tempDir('server');
  const cofre = await createCofre({
    storage: { type: 'sqlite', path: join(dir, 'cofre.db') },
    logLevel: 'error',
    defaultMounts: devDefaultMounts(),
    ...(opts.ui ? { ui: { redirectRoot: true, ...(opts.ui === true ? {} : { dir: opts.ui.dir }) } } : {}),
    ...(opts.streamHeartbeatMs !== undefined ? { streamHeartbeatMs: opts.streamHeartbeatMs } : {}),
  });
  await cofre.http.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const address = cofre.http.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const api = apiClient(url);
  let keys: string[] = [];
  let rootToken = '';
  if (opts.initialised !== false) {
    const init = await api.call('PUT', 'sys/init', {
      body: { secret_shares: opts.shares ?? 3, secret_threshold: opts.threshold ?? 2 },
    });
    if (init.status !== 200) throw new Error(`init failed: ${init.text}`);
    keys = init.body.keys;
    rootToken = init.body.root_token;
    for (const key of keys.slice(0, opts.threshold ?? 2)) await api.call('PUT', 'sys/unseal', { body: { key } });
  }
  return {
    cofre,
    url,
    dir,
    api: apiClient(url, rootToken),
    keys,
    rootToken,
    async stop() {
      await cofre.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `cofre server --dev` as a child process (the built CLI when present, else through tsx). */
export async function spawnDevServer(
  dir: string,
  port: number,
  rootToken = 'root',
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'server',
      '--dev',
      '--data-dir',
      dir,
      '--dev-listen-address',
      `127.0.0.1:${port}`,
      '--dev-root-token-id',
      rootToken,
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`dev server exited: ${out}`);
    try {
      const res = await fetch(`${url}/v1/sys/health`);
      if (res.status === 200) return { child, url, output: () => out };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`dev server did not become healthy in 20 s: ${out}`);
}

/**
 * A dev server with two server threads (root token "root"), once both serve: writes forwarded to the first thread
 * (the default) or, `forwarding` false, served where they arrive (COFRE_FORWARD_WRITES=off).
 */
export async function spawnThreadedDevServer(
  dir: string,
  forwarding = true,
): Promise<Awaited<ReturnType<typeof spawnDevServer>>> {
  const env = { COFRE_FORWARD_WRITES: forwarding ? 'on' : 'off' };
  const server = await spawnDevServer(dir, await freePort(), 'root', ['--workers', '2'], env);
  // Healthy as soon as the first thread is up: the banner comes once every thread is.
  for (let i = 0; i < 200 && !server.output().includes('Server threads: 2'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!server.output().includes('Server threads: 2')) {
    server.child.kill('SIGKILL');
    throw new Error(`the second server thread did not start in 10 s: ${server.output()}`);
  }
  return server;
}

export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A self-signed certificate for 127.0.0.1 made with openssl in dir: `{ key, cert }` file paths. */
export function selfSignedCert(dir: string): { key: string; cert: string } {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  const subject = ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
  const args = [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    ...subject,
    '-keyout',
    key,
    '-out',
    cert,
  ];
  const gen = spawnSync('openssl', args, { encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`openssl is needed for TLS tests (apt-get install openssl): ${gen.stderr}`);
  return { key, cert };
}

/**
 * Writers that keep writing new KV v2 secrets under secret/data/crash/ until stopped or until their server dies,
 * remembering every write the server acknowledged: the crash tests kill the server and read these back.
 */
export function startCrashWriters(api: Api, count = 16): { acknowledged: Map<string, string>; stop(): Promise<void> } {
  const acknowledged = new Map<string, string>();
  let stopped = false;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; !stopped; i++) {
      const key = `w${w}-${i}`;
      const value = `v-${w}-${i}-${Math.random()}`;
      try {
        const res = await api.call('POST', `secret/data/crash/${key}`, { body: { data: { value } } });
        if (res.status === 200) acknowledged.set(key, value);
      } catch {
        return; // the connection died with the server
      }
    }
  };
  const writers = Array.from({ length: count }, (_, w) => writer(w));
  return {
    acknowledged,
    async stop() {
      stopped = true;
      await Promise.all(writers);
    },
  };
}

/** The acknowledged writes that do not read back as written through api. */
export async function lostWrites(api: Api, acknowledged: Map<string, string>): Promise<string[]> {
  const missing: string[] = [];
  for (const [key, value] of acknowledged) {
    const res = await api.call('GET', `secret/data/crash/${key}`);
    if (res.status !== 200 || res.body.data.data.value !== value) missing.push(key);
  }
  return missing;
}

/**
 * Revokes a token (as `revoker`, by token) while every api in `minters` creates children of it in a loop, each
 * until it is refused: the race of a parent's revocation against its children's creation. Returns the children
 * that were created and the revocation's status.
 */
export async function revokeWhileMinting(
  minters: Api[],
  revoker: Api,
  parentToken: string,
  headStartMs: number,
): Promise<{ children: string[]; revokeStatus: number }> {
  const children: string[] = [];
  let stop = false;
  const mint = async (api: Api) => {
    while (!stop) {
      const res = await api.call('POST', 'auth/token/create', { token: parentToken, body: {} });
      if (res.status !== 200) return;
      children.push(res.body.auth.client_token as string);
    }
  };
  const loops = minters.map(mint);
  // The race needs minting under way: the head start counts from the first child (a cold server takes longer for it).
  for (let waited = 0; children.length === 0 && waited < 5000; waited += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setTimeout(resolve, headStartMs));
  const revoked = await revoker.call('POST', 'auth/token/revoke', { body: { token: parentToken } });
  stop = true;
  await Promise.all(loops);
  return { children, revokeStatus: revoked.status };
}

/** Polls probe until it returns a value, or fails after ms saying what it waited for. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Enables a file audit device named "file" writing to the given path; fails the test if it cannot. */
export async function enableFileAudit(api: Api, filePath: string): Promise<void> {
  const res = await api.call('PUT', 'sys/audit/file', { body: { type: 'file', options: { file_path: filePath } } });
  if (res.status !== 204) throw new Error(`enabling the file audit device failed: ${res.status} ${res.text}`);
}

/** A PUT that must succeed (200 or 204); returns the response. */
export async function writeOk(api: Api, path: string, body: unknown = {}): Promise<Awaited<ReturnType<Api['call']>>> {
  const res = await api.call('PUT', path, { body });
  if (res.status !== 200 && res.status !== 204) throw new Error(`PUT ${path}: ${res.status} ${res.text}`);
  return res;
}

/** Runs `cofre ARGS` in this process against url with token, and returns its exit code and output. */
export async function runCli(url: string, token: string, ...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const saved = { stdout: stdio.stdout, stderr: stdio.stderr };
  const env = { addr: process.env.COFRE_ADDR, token: process.env.COFRE_TOKEN };
  stdio.stdout = stdio.stderr = { write: (text: string) => (out += text) };
  process.env.COFRE_ADDR = url;
  process.env.COFRE_TOKEN = token;
  try {
    return { code: await run(buildProgram(), args), out };
  } finally {
    Object.assign(stdio, saved);
    for (const [key, value] of [['COFRE_ADDR', env.addr] as const, ['COFRE_TOKEN', env.token] as const]) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (helm, kubectl, ...) to its end with `input` on its stdin; never rejects for a non-zero exit. */
export function runProcess(file: string, args: string[], input = ''): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** A request to a server in this process (tests of several nodes), its JSON body parsed ({} when empty). */
export async function injectJson(
  node: Cofre,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  opts: { token?: string; payload?: unknown } = {},
): Promise<{ status: number; body: Json }> {
  const res = await node.http.inject({
    method,
    url: `/v1/${url}`,
    headers: opts.token ? { 'x-vault-token': opts.token } : {},
    ...(opts.payload ? { payload: opts.payload as Record<string, unknown> } : {}),
  });
  return { status: res.statusCode, body: res.body === '' ? {} : res.json() };
}

/** Initialises the store through the first node, with one key share, and unseals every node with it. */
export async function initAndUnseal(nodes: Cofre[]): Promise<{ rootToken: string; key: string }> {
  const init = await injectJson(nodes[0]!, 'PUT', 'sys/init', { payload: { secret_shares: 1, secret_threshold: 1 } });
  if (init.status !== 200) throw new Error(`sys/init answered ${init.status}`);
  const key = (init.body.keys as string[])[0]!;
  for (const node of nodes) {
    const res = await injectJson(node, 'PUT', 'sys/unseal', { payload: { key } });
    if (res.status !== 200 || res.body.sealed !== false) throw new Error(`sys/unseal answered ${res.status}`);
  }
  return { rootToken: init.body.root_token as string, key };
}

// What starting a throwaway database server for a test run needs, whatever the database: a free port, a child
// process with its output in a log file, a wait until it answers, and a stop that never leaves anything behind.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';

export interface TestDatabase {
  host: string;
  port: number;
  /** An administrator: superuser on PostgreSQL, root on MariaDB. */
  user: string;
  password: string;
  /** postgres://USER:PASSWORD@127.0.0.1:PORT/postgres or mysql://root:PASSWORD@127.0.0.1:PORT/ */
  url: string;
  /** The same server through its Unix socket (a PostgreSQL this harness started; not for PGHOST's). */
  socketUrl?: string;
  /** Runs one statement as the administrator on a fresh TCP connection ($1 or ? placeholders) and returns its rows. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Stops the server and removes its directory; does nothing for a server this harness did not start. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Fails with how to get the package when a server binary is missing, instead of a bare ENOENT later. */
export function requireBinaries(files: string[], install: string): void {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not found: install them with '${install}'`);
}

/** uid/gid of an OS account, for servers that refuse to run as root. */
export function account(name: string): { uid: number; gid: number } {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error(`no OS user '${name}' to run the server as (the Debian package creates it)`);
  }
}

export interface Server {
  child: ChildProcess;
  log: string;
  /** Stops the process with `signal` (SIGKILL after 10 s) and removes the directory. */
  stop(): Promise<void>;
}

/**
 * Spawns a server whose output goes to LOG (a file: nothing has to drain it). It must not outlive this process: an
 * 'exit' handler signals it, and for a SIGKILL of this process (which runs no handler) a small detached shell waits
 * for this process to go away, then signals the server and removes DIR; it ends by itself once stop() removed DIR.
 */
export function startServer(
  dir: string,
  file: string,
  args: string[],
  opts: { log: string; signal: NodeJS.Signals; uid?: number; gid?: number },
): Server {
  const fd = openSync(opts.log, 'a');
  const ids = opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid };
  const child = spawn(file, args, { cwd: dir, stdio: ['ignore', fd, fd], ...ids });
  closeSync(fd);
  child.on('error', () => {}); // a failed spawn shows up as an early exit in waitReady
  const onExit = () => child.kill(opts.signal);
  process.once('exit', onExit);
  if (child.pid !== undefined) {
    const script =
      'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; ' +
      'if [ -d "$2" ]; then kill -"$4" "$3" 2>/dev/null; sleep 2; rm -rf "$2"; fi';
    const reaperArgs = [String(process.pid), dir, String(child.pid), opts.signal.replace(/^SIG/, '')];
    spawn('sh', ['-c', script, 'reaper', ...reaperArgs], { detached: true, stdio: 'ignore' }).unref();
  }
  const stop = async () => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(opts.signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { child, log: opts.log, stop };
}

/** Polls `probe` until it succeeds; fails early, with the end of the log, if the server exits. */
export async function waitReady(server: Server, what: string, probe: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const { exitCode, signalCode } = server.child;
    if (exitCode !== null || signalCode !== null)
      throw new Error(`${what} exited (${exitCode ?? signalCode}) before accepting connections\n${tail(server.log)}`);
    try {
      return await probe();
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${READY_TIMEOUT_MS / 1000} s (last: ${last})\n${tail(server.log)}`);
}

export function tail(file: string): string {
  const text = existsSync(file) ? readFileSync(file, 'utf8').slice(-4000) : '(no log)';
  return `--- end of ${path.basename(file)} ---\n${text}`;
}

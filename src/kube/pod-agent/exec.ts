// Exec mode (`cofre agent exec -- CMD ARGS...`): log in, resolve the env items and run the command with the values
// in its environment only. Where Node.js has process.execve (22.15+, 24) the agent process becomes the command, so
// no process is left holding the values. Elsewhere the command is spawned with the agent's stdio, signals are
// forwarded and the agent exits as the command did; the values are passed to the child only, never set in the
// agent's own process.env (so /proc/<agent pid>/environ never holds them).
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { VaultClient } from '../../client/client.js';
import type { AgentConfig, EnvOutput, Item } from './config.js';
import type { HeldLease } from './handover.js';
import type { Log } from './log.js';
import { renderEnv } from './render.js';
import { Session } from './session.js';
import { SourceError, Sources } from './sources.js';

/** A PATH for images that set none (a scratch image): the one Docker's runtime uses. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export class ExecError extends Error {}

/** Every env item's variables, fetched with one login; and that session, and the leases it was issued by item. */
export async function resolveEnv(
  config: AgentConfig,
  client: VaultClient,
  log: Log,
): Promise<{ values: Record<string, string>; session: Session; leases: Record<string, HeldLease> }> {
  const session = new Session(client, config.auth, log);
  const sources = new Sources(client);
  const out: Record<string, string> = {};
  const leases: Record<string, HeldLease> = {};
  const failures: string[] = [];
  for (const item of config.items.filter((i): i is Item & { output: EnvOutput } => i.output.kind === 'env')) {
    try {
      const token = await session.token();
      let fetched;
      try {
        fetched = await sources.fetch(item, token);
      } catch (err) {
        if (!(err instanceof SourceError) || !err.refused) throw err;
        fetched = await sources.fetch(item, await session.refused(token));
      }
      Object.assign(out, renderEnv(item, item.output.vars, fetched.data));
      if (fetched.lease)
        leases[item.name] = {
          ...fetched.lease,
          requested: fetched.lease.duration,
          expiresAt: Date.now() + fetched.lease.duration * 1000,
        };
      log('info', 'resolved', { item: item.name, variables: Object.keys(item.output.vars) });
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) {
    await session.revoke().catch(() => undefined);
    throw new ExecError(failures.join('; '));
  }
  return { values: out, session, leases };
}

/** The executable `command` names: a path as given, else the first match on PATH (execve does no PATH look-up). */
export function findExecutable(command: string, searchPath = process.env.PATH || DEFAULT_PATH): string {
  const candidates = command.includes('/') ? [command] : searchPath.split(':').map((d) => path.join(d || '.', command));
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new ExecError(
    command.includes('/') ? `${command}: no such executable file` : `${command}: not found on PATH (${searchPath})`,
  );
}

/** Replaces this process with the command (execve), or runs it as a child and never returns (exits as it did). */
export function execCommand(argv: string[], values: Record<string, string>, log: Log): Promise<never> {
  const [command, ...args] = argv;
  if (!command) throw new ExecError('no command given after "--"');
  const file = findExecutable(command);
  // The child's environment: the agent's own, plus the values. The agent's process.env is never written.
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  Object.assign(env, values);
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string>) => never }).execve;
  if (typeof execve === 'function') {
    // execve is experimental: its one-time warning would go to the application's stderr.
    process.removeAllListeners('warning');
    try {
      execve(file, [command, ...args], env);
    } catch (err) {
      throw new ExecError(`${command}: ${(err as Error).message}`);
    }
  }
  log('info', 'process.execve is not available in this Node.js; running the command as a child', {
    node: process.version,
  });
  return new Promise<never>(() => {
    const child = spawn(file, args, { argv0: command, env, stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    for (const signal of FORWARDED) process.on(signal, forward(signal));
    child.on('error', (err) => {
      process.stderr.write(`cofre agent exec: ${command}: ${err.message}\n`);
      process.exit(127);
    });
    child.on('exit', (code, signal) => {
      if (signal) {
        // Die of the same signal, so our parent sees what the command's parent would have.
        for (const s of FORWARDED) process.removeAllListeners(s);
        process.kill(process.pid, signal);
        process.exit(128 + (osConstants.signals[signal] ?? 0));
      }
      process.exit(code ?? 1);
    });
  });
}

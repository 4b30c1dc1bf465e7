// The agent's three ways to run, as the CLI starts them (src/cli/agent.ts): the init container (`-init`: render every
// file item once, install the exec runtime, exit), the native sidecar (render, then keep everything current until
// SIGTERM) and exec mode. Configuration comes only from the environment the webhook sets (contract.ts).
import { VaultClient } from '../../client/client.js';
import type { TlsSettings } from '../../client/transport.js';
import { parseConfig, type AgentConfig } from './config.js';
import { ENV_ADDRESS, ENV_CACERT, ENV_CONFIG } from './contract.js';
import { execCommand, resolveEnv } from './exec.js';
import { ExecLeases } from './exec-leases.js';
import { FilesAgent } from './files-agent.js';
import { writeHandover } from './handover.js';
import { installExecRuntime } from './install.js';
import type { Log } from './log.js';
import type { Session } from './session.js';

export interface AgentEnvironment {
  config: AgentConfig;
  client: VaultClient;
  tls: TlsSettings;
}

/** COFRE_CACERT (or VAULT_CACERT) is a PEM file's path or the PEM itself. */
function tlsFrom(env: NodeJS.ProcessEnv): TlsSettings {
  const ca = env[ENV_CACERT] || env.VAULT_CACERT;
  const skip = ['1', 't', 'true', 'yes'].includes((env.COFRE_SKIP_VERIFY ?? env.VAULT_SKIP_VERIFY ?? '').toLowerCase());
  const tls: TlsSettings = skip ? { tlsSkipVerify: true } : {};
  if (ca) {
    if (ca.includes('-----BEGIN')) tls.caCertBytes = ca;
    else tls.caCert = ca;
  }
  return tls;
}

export function agentEnvironment(env: NodeJS.ProcessEnv = process.env): AgentEnvironment {
  const config = parseConfig(env[ENV_CONFIG]);
  const address = env[ENV_ADDRESS] || env.VAULT_ADDR;
  if (!address) throw new Error(`${ENV_ADDRESS} is not set: the agent needs Cofre's address`);
  const tls = tlsFrom(env);
  const client = new VaultClient({
    address: address.replace(/\/+$/, ''),
    addressOrigin: `address from ${env[ENV_ADDRESS] ? ENV_ADDRESS : 'VAULT_ADDR'}`,
    caHint: `for a private CA, give its PEM (or the path of a PEM file) in ${ENV_CACERT}`,
    ...tls,
  });
  return { config, client, tls };
}

export interface FilesModeOptions {
  /** Render once and exit (the init container; -exit-after-render). */
  once: boolean;
  statusFile?: string;
  log: Log;
}

/**
 * Files mode. With `once`: renders every file item, installs the exec runtime when the config says install_to, and
 * resolves (the CLI exits 0); any failure rejects, naming the items. Otherwise keeps running until SIGTERM or
 * SIGINT, then revokes the token and its leases unless revoke_on_exit is false, and resolves.
 */
export async function runFilesMode(environment: AgentEnvironment, opts: FilesModeOptions): Promise<void> {
  const { config } = environment;
  // Listening from the start: a pod deleted while the sidecar still starts up gets its leases revoked too.
  let stop: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  if (!opts.once) for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop(signal));
  const agent = new FilesAgent({
    ...environment,
    log: opts.log,
    ...(opts.statusFile ? { statusFile: opts.statusFile } : {}),
    onExitRequested: () => stop('on_change.exit'),
  });
  try {
    await agent.renderAll();
    if (opts.once && config.installTo) {
      const { files } = await installExecRuntime(config.installTo);
      opts.log('info', 'installed the exec runtime', { dir: config.installTo, files });
    }
  } catch (err) {
    // The pod will not start (init) or this agent restarts (sidecar): what it was issued is of no use to anyone.
    await agent.stop(true);
    throw err;
  }
  if (opts.once) {
    // The sidecar, if the pod has one, takes over the credentials instead of issuing a second set.
    if (config.stateFile && agent.leaseCount() > 0) await agent.handOver();
    await retireToken(agent.session, agent.leaseCount(), opts.log);
    opts.log('info', 'rendered every file item; exiting', { items: agent.status.items.size });
    return;
  }
  await agent.follow();
  const execLeases = config.execStateFiles.length
    ? new ExecLeases({
        files: config.execStateFiles,
        client: environment.client,
        auth: config.auth,
        log: opts.log,
        ownAccessor: () => agent.session.current()?.accessor,
        onNearingEnd: (file, item) => {
          if (agent.requestNotify())
            opts.log('info', 'a credential in an env var nears its end; running on_change', { item, state_file: file });
          else
            opts.log('warn', 'a credential in an env var nears its end; the container keeps it until it restarts', {
              item,
              state_file: file,
            });
        },
      })
    : undefined;
  execLeases?.start();
  opts.log('info', 'following changes', { items: agent.status.items.size });
  // The agent's timers do not hold the process open (so a stopped agent ends at once): this does, until a signal.
  const alive = setInterval(() => undefined, 1 << 30);
  const reason = await stopped;
  clearInterval(alive);
  const revoke = reason !== 'on_change.exit' && config.revokeOnExit;
  opts.log('info', 'stopping', { reason, revoke });
  await execLeases?.stop(revoke);
  await agent.stop(revoke);
}

/**
 * An agent that exits revokes its token when nothing it delivered depends on it (no lease was issued under it), so
 * no unused token is left behind; credentials with a lease end with their token, so then it is left to its TTL.
 */
export async function retireToken(session: Session, leases: number, log: Log): Promise<void> {
  if (leases > 0) {
    session.stop();
    return;
  }
  try {
    await session.revoke();
  } catch (err) {
    log('warn', 'could not revoke the agent token', { error: (err as Error).message });
  }
}

/** Exec mode: never returns (the process becomes the command, or exits as its child did). */
export async function runExecMode(environment: AgentEnvironment, argv: string[], log: Log): Promise<never> {
  const { config } = environment;
  const { values, session, leases } = await resolveEnv(config, environment.client, log);
  const count = Object.keys(leases).length;
  const held = session.current();
  // The process cannot renew what is in its environment: the sidecar, if the pod has one, does it from this file.
  if (config.stateFile && count > 0 && held) {
    const state = { token: held.token, ttl: held.ttl, renewable: held.renewable, leases, digests: {} };
    try {
      await writeHandover(config.stateFile, state, 0o644);
      log('info', 'left the leases to the sidecar', { state_file: config.stateFile, items: Object.keys(leases) });
    } catch (err) {
      log('warn', 'could not write the state file; the leases end with their TTL', { error: (err as Error).message });
    }
  }
  await retireToken(session, count, log);
  return execCommand(argv, values, log);
}

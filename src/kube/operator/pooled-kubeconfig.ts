// API calls that reuse their connections. client-node 1.x builds a new https.Agent for every generated API call
// (KubeConfig.createAgent, kubernetes-client/javascript#2893), so each call opens a TCP connection and does a TLS
// handshake with the API server: at a cold sync's pace that handshake was most of the operator's CPU, and the
// agents and sockets it left behind most of its memory. This KubeConfig hands every call one keep-alive agent
// instead. Watches (informers) keep their own agent: client-node destroys a watch's sockets when it ends.
import https from 'node:https';
import type { Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeConnectionsOpened } from './metrics.js';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];
/** What an agent's TLS depends on: CA, client certificate and key, passphrase, verification, server name. */
type TlsSettings = unknown[];

function sameSettings(a: TlsSettings, b: TlsSettings): boolean {
  return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b)) return sameSettings(a, b);
  return a === b;
}

export class PooledKubeConfig extends KubeConfig {
  private pool: { settings: TlsSettings; agent: https.Agent } | undefined;

  /** The same clusters, users and contexts as `kc` (objects shared, nothing re-read). */
  static from(kc: KubeConfig): PooledKubeConfig {
    const pooled = new PooledKubeConfig();
    pooled.loadFromOptions({
      clusters: kc.clusters,
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    return pooled;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getAgent();
    // A proxy agent (hpagent's is an https.Agent too) tunnels per request: left as client-node made it.
    if (!(made instanceof https.Agent) || this.getCurrentCluster()?.proxyUrl) return;
    context.setAgent(this.agentLike(made));
    made.destroy();
  }

  /** Ends the pooled connections (the operator stopped). */
  close(): void {
    this.pool?.agent.destroy();
    this.pool = undefined;
  }

  /**
   * The pooled agent for the TLS settings of `made`; a new one when they changed (client certificates from an exec
   * plugin rotate), the old one's connections ended.
   */
  private agentLike(made: https.Agent): https.Agent {
    const o = made.options;
    // Compared field by field: client-node reads certificate files again for every call, so the buffers are new
    // each time, and hashing them per call cost more CPU than the calls' own JSON.
    const settings: TlsSettings = [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername];
    if (this.pool && sameSettings(this.pool.settings, settings)) return this.pool.agent;
    this.pool?.agent.destroy();
    const agent = new https.Agent({ ...o, keepAlive: true });
    const create = agent.createConnection.bind(agent) as (...args: unknown[]) => Socket;
    // Counted, so a regression to a connection per call shows in the metrics (and in a test).
    agent.createConnection = ((...args: unknown[]) => {
      kubeConnectionsOpened.inc();
      return create(...args);
    }) as typeof agent.createConnection;
    this.pool = { settings, agent };
    return agent;
  }
}

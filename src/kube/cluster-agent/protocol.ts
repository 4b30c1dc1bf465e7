/**
 * The cluster agent's side of the multi-cluster protocol (docs/multi-cluster.md, "The agent"): enrol with a
 * bootstrap token, log in with a signature of the agent's Ed25519 key, follow the stream (reconnecting and
 * resuming), fetch and open its bundles, report. Kubernetes is not touched here (apply.ts, lifecycle.ts), nor are
 * keys made or kept (keys.ts): this speaks to Cofre only, through the shared API client.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { apiUrl, ApiError, VaultClient, type TlsSettings } from '../../client/index.js';
import { silenceDeadline, silenceMessage, STREAM_SILENCE_MS } from '../../client/silence.js';
import { followFrames } from '../../client/sse.js';
import { caBundle, MAX_RESPONSE_BYTES } from '../../client/transport.js';
import type { BundleBinding, SealedBundle } from '../../clusters/sealing.js';
import type { AgentKeys } from './keys.js';
import type { LifecycleMap } from './lifecycle.js';

/** Re-login this long before the token's expiry. */
const RELOGIN_MARGIN_MS = 60_000;
/** The hello frame lists every delivery of the cluster (names and revisions, no content): as large as an answer. */
const MAX_FRAME_CHARS = MAX_RESPONSE_BYTES;

export interface SetEntry {
  delivery: string;
  namespace: string;
  /** 0: remove the delivery's objects. */
  revision: number;
}

export interface DeliveryEvent {
  delivery: string;
  revision: number;
}

/** The payload a bundle opens to. */
export interface BundlePayload {
  objects: {
    kind: 'Secret' | 'ConfigMap';
    name: string;
    type?: string;
    immutable?: boolean;
    /** Asked for as environment variables or in-memory files (written as a Secret until in-pod delivery lands). */
    mode?: 'env' | 'file';
    data: Record<string, string>;
  }[];
  rollout: { kind: 'Deployment' | 'StatefulSet' | 'DaemonSet'; name: string }[];
}

export interface FetchedBundle {
  delivery: string;
  namespace: string;
  revision: number;
  bundle: SealedBundle;
}

/** One delivery's entry in the report (`PUT sys/cofre/agent/report`, `deliveries.<name>`). */
export interface DeliveryReport {
  revision: number;
  applied_at?: string;
  error?: string;
  /** The lifecycle map: pods per revision of the workloads the delivery rolls. */
  pods: LifecycleMap;
  /** What else the status should say, e.g. items written as a Secret instead of the in-pod delivery asked for. */
  notes?: string[];
}

/** What the protocol needs of the agent's keys (keys.ts AgentKeys): sign a login, open a bundle. */
export type AgentSigner = Pick<AgentKeys, 'sign'>;
export type AgentOpener = Pick<AgentKeys, 'open'>;

export interface AgentConfig extends TlsSettings {
  address: string;
  /** From the enrolment. */
  clusterId: string;
  keys: AgentKeys;
  /** Log in again this long before the token expires (default 60 s); the stream reconnects with the new token. */
  reloginMarginMs?: number;
}

/** Enrols the agent's public keys with the single-use bootstrap token (no token needed). */
export async function enrol(
  server: { address: string } & TlsSettings,
  bootstrapToken: string,
  keys: { sealingPublicKey: string; signingPublicKey: string },
  agentVersion: string,
): Promise<{ cluster_id: string; name: string }> {
  const client = new VaultClient({ ...server, token: undefined });
  const answer = (await client.request('PUT', 'sys/cofre/agent/enrol', {
    body: {
      bootstrap_token: bootstrapToken,
      sealing_key: keys.sealingPublicKey,
      signing_key: keys.signingPublicKey,
      agent_version: agentVersion,
    },
    token: null,
    what: 'enrolling the cluster',
  })) as { data: { cluster_id: string; name: string } };
  return answer.data;
}

/** The login proof: an Ed25519 signature of `cofre-agent-login\n<cluster_id>\n<timestamp>\n<nonce>`. */
export function loginProof(clusterId: string, keys: AgentSigner, at = new Date()): Record<string, string> {
  const timestamp = at.toISOString();
  const nonce = randomBytes(16).toString('base64url');
  const signature = keys.sign(`cofre-agent-login\n${clusterId}\n${timestamp}\n${nonce}`);
  return { cluster_id: clusterId, timestamp, nonce, signature };
}

/**
 * Opens a fetched bundle with the binding the agent expects: its own cluster id, and the delivery and namespace
 * it asked for at a revision never lower than `minRevision` (what its set said, or what it applied). A bundle
 * for another cluster, delivery or namespace, an older revision or any changed byte is refused.
 */
export async function openFetched(
  clusterId: string,
  keys: AgentOpener,
  expected: { delivery: string; namespace: string; minRevision: number },
  fetched: FetchedBundle,
): Promise<BundlePayload> {
  if (fetched.delivery !== expected.delivery || fetched.namespace !== expected.namespace) {
    throw new Error(
      `bundle is for ${fetched.namespace}/${fetched.delivery}, not ${expected.namespace}/${expected.delivery}`,
    );
  }
  if (!Number.isSafeInteger(fetched.revision) || fetched.revision < Math.max(1, expected.minRevision)) {
    throw new Error(`bundle revision ${fetched.revision} is older than ${expected.minRevision}`);
  }
  const binding: BundleBinding = {
    clusterId,
    delivery: expected.delivery,
    namespace: expected.namespace,
    revision: fetched.revision,
  };
  const plain = await keys.open(binding, fetched.bundle);
  return JSON.parse(Buffer.from(plain).toString('utf8')) as BundlePayload;
}

/** An error of an agent request, in a line for the log: a refusal says the cluster may be deregistered. */
export function describeAgentError(err: unknown): string {
  if (err instanceof ApiError && (err.status === 403 || err.status === 400))
    return (
      `refused by the server (HTTP ${err.status}): this cluster is deregistered, ` +
      `or its keys are not the enrolled ones`
    );
  return (err as Error).message;
}

/** One cluster's agent speaking to Cofre: a token kept fresh by logging in again before it expires. */
export class AgentProtocol {
  private token: { value: string; expiresAt: number } | undefined;

  constructor(readonly config: AgentConfig) {}

  private client(token: string | undefined): VaultClient {
    const { address, caCert, caCertBytes, tlsSkipVerify } = this.config;
    return new VaultClient({ address, caCert, caCertBytes, tlsSkipVerify, token });
  }

  /** Logs in with a fresh signature; the token is kept until shortly before it expires. */
  async login(): Promise<string> {
    const answer = (await this.client(undefined).request('PUT', 'sys/cofre/agent/login', {
      body: loginProof(this.config.clusterId, this.config.keys),
      token: null,
      what: 'logging in the cluster agent',
    })) as { auth: { client_token: string; lease_duration: number } };
    this.token = { value: answer.auth.client_token, expiresAt: Date.now() + answer.auth.lease_duration * 1000 };
    return this.token.value;
  }

  /** When the current token is due for a new login (0: no token yet). */
  renewAt(): number {
    return this.token ? this.token.expiresAt - (this.config.reloginMarginMs ?? RELOGIN_MARGIN_MS) : 0;
  }

  /** A valid token: the current one, or a new login (`fresh`: the server refused the current one). */
  async currentToken(fresh = false): Promise<string> {
    if (!fresh && this.token && this.renewAt() > Date.now()) return this.token.value;
    return this.login();
  }

  /** A request with the agent's token; a 403 (token expired or revoked) logs in once more and retries. */
  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    try {
      return await this.client(await this.currentToken()).request(method, path, body === undefined ? {} : { body });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 403) throw err;
      return this.client(await this.currentToken(true)).request(method, path, body === undefined ? {} : { body });
    }
  }

  /** What this cluster should hold: every delivery at its revision (0: remove). */
  async set(): Promise<SetEntry[]> {
    const answer = (await this.call('GET', 'sys/cofre/agent/bundles')) as { data: { deliveries: SetEntry[] } };
    return answer.data.deliveries;
  }

  async fetchBundle(delivery: string): Promise<FetchedBundle> {
    const answer = (await this.call('GET', `sys/cofre/agent/bundles/${delivery}`)) as { data: FetchedBundle };
    return answer.data;
  }

  /** Fetches and opens a delivery of the set, refusing anything older than `minRevision`. */
  async fetchAndOpen(
    entry: SetEntry,
    minRevision = entry.revision,
  ): Promise<{ revision: number; payload: BundlePayload }> {
    const fetched = await this.fetchBundle(entry.delivery);
    const payload = await openFetched(
      this.config.clusterId,
      this.config.keys,
      { delivery: entry.delivery, namespace: entry.namespace, minRevision },
      fetched,
    );
    return { revision: fetched.revision, payload };
  }

  async report(report: {
    agent_version: string;
    health: string;
    deliveries: Record<string, DeliveryReport>;
  }): Promise<void> {
    await this.call('PUT', 'sys/cofre/agent/report', report);
  }

  /**
   * Follows the stream until closed, reconnecting with back-off and resuming from the last event id. `silenceMs`:
   * how long a connection may bring nothing before it is taken as dead (STREAM_SILENCE_MS).
   */
  stream(
    handlers: AgentStreamHandlers,
    opts: { minDelayMs?: number; maxDelayMs?: number; silenceMs?: number } = {},
  ): AgentStream {
    return new AgentStream(this, handlers, {
      minDelayMs: opts.minDelayMs ?? 200,
      maxDelayMs: opts.maxDelayMs ?? 30_000,
      silenceMs: opts.silenceMs ?? STREAM_SILENCE_MS,
    });
  }
}

export interface AgentStreamHandlers {
  /** On every (re)connection: the full set, so a reconnecting agent catches up. */
  onHello: (set: SetEntry[]) => void;
  onDelivery: (event: DeliveryEvent) => void;
  onConnected?: (connected: boolean) => void;
  log?: (message: string, fields?: object) => void;
}

export class AgentStream {
  private closed = false;
  private request: http.ClientRequest | undefined;
  private lastEventId: string | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly agent: AgentProtocol,
    private readonly handlers: AgentStreamHandlers,
    private readonly timing: { minDelayMs: number; maxDelayMs: number; silenceMs: number },
  ) {
    void this.loop();
  }

  close(): void {
    this.closed = true;
    this.request?.destroy();
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const { minDelayMs, maxDelayMs } = this.timing;
    let delay = minDelayMs;
    let fresh = false;
    while (!this.closed) {
      let outcome: { hello: boolean; refused: boolean; error?: string };
      try {
        outcome = await this.connect(await this.agent.currentToken(fresh));
      } catch (err) {
        outcome = { hello: false, refused: false, error: describeAgentError(err) };
      }
      this.handlers.onConnected?.(false);
      if (this.closed) break;
      fresh = outcome.refused;
      if (outcome.hello) delay = minDelayMs;
      if (outcome.error) this.handlers.log?.('agent stream disconnected', { error: outcome.error });
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay).unref();
      });
      delay = Math.min(maxDelayMs, delay * 2);
    }
  }

  private connect(token: string): Promise<{ hello: boolean; refused: boolean; error?: string }> {
    const { config } = this.agent;
    const url = apiUrl(config.address, 'sys/cofre/agent/stream');
    const secure = url.startsWith('https:');
    return new Promise((resolve) => {
      let hello = false;
      let settled = false;
      let renewal: NodeJS.Timeout | undefined;
      // Armed once the request is out (below); every byte received pushes it back, and past it the connection is
      // dropped and the loop reconnects.
      const silence = silenceDeadline(this.timing.silenceMs, () => {
        req.destroy();
        done(false, silenceMessage(this.timing.silenceMs));
      });
      const done = (refused: boolean, error?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(renewal);
        silence.clear();
        resolve({ hello, refused, error });
      };
      let tls: https.RequestOptions;
      try {
        tls = secure ? { ca: caBundle(config), rejectUnauthorized: !config.tlsSkipVerify } : {};
      } catch (err) {
        done(false, (err as Error).message);
        return;
      }
      const headers: Record<string, string> = { 'X-Vault-Token': token, Accept: 'text/event-stream' };
      if (this.lastEventId !== undefined) headers['Last-Event-ID'] = this.lastEventId;
      const req = (secure ? https : http).request(url, { method: 'GET', headers, ...tls }, (res) => {
        silence.heard();
        if (res.statusCode !== 200) {
          res.resume();
          done(res.statusCode === 403 || res.statusCode === 401, `HTTP ${res.statusCode}`);
          return;
        }
        // The server ends the stream when its token expires: log in again before that and reconnect (the
        // new connection's hello catches up), so there is no moment without a valid token.
        renewal = setTimeout(
          () => {
            this.handlers.log?.('logging in again before the token expires; reconnecting the stream');
            req.destroy();
            done(true);
          },
          // At least a second: a token shorter-lived than the margin must not spin the stream.
          Math.max(1_000, this.agent.renewAt() - Date.now()),
        );
        renewal.unref();
        followFrames(res, MAX_FRAME_CHARS, {
          heard: () => silence.heard(),
          refused: (message) => {
            req.destroy();
            done(false, message);
          },
          frame: (frame) => {
            if (frame.id !== undefined) this.lastEventId = frame.id;
            if (frame.event === 'hello') {
              hello = true;
              this.handlers.onConnected?.(true);
              this.handlers.onHello((frame.data as { deliveries: SetEntry[] }).deliveries);
            } else if (frame.event === 'delivery') {
              this.handlers.onDelivery(frame.data as unknown as DeliveryEvent);
            } else if (frame.event === 'error') {
              req.destroy();
              done(true, 'token revoked or expired');
            }
          },
        });
        res.on('end', () => done(false, 'stream ended'));
        res.on('error', (err) => done(false, err.message));
      });
      req.on('error', (err) => done(false, err.message));
      silence.heard();
      req.end();
      this.request = req;
    });
  }
}

// The agent's Cofre token: a Kubernetes login with the projected service-account token (read from its file at
// every login, since the kubelet rotates it), renewed at about two thirds of its lease, and replaced by a new login
// when a renewal fails or the token nears its max TTL. Owners learn of a new login (leases issued under the old
// token end with it, so leased items must be issued again).
import { readFile } from 'node:fs/promises';
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import { planRenewal, renewSelf } from '../../client/renewal.js';
import type { AgentConfig } from './config.js';
import type { Log } from './log.js';
import type { TokenVerdict } from './token-identity.js';

export class LoginError extends Error {}

interface Held {
  token: string;
  /** Names the token without being it (lookup-self shows it): how a token found in a state file is told apart. */
  accessor?: string;
  /** The TTL the login granted, asked for again on each renewal. */
  ttl: number;
  renewable: boolean;
  /** What the last login or renewal granted (seconds): less than `ttl` when the max TTL capped it. */
  granted: number;
  /** When the token runs out as last granted (ms since the epoch; 0 for a token without a TTL). */
  expiresAt: number;
}

export class Session {
  private held: Held | undefined;
  private pending: Promise<string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private keepAlive = false;
  private readonly listeners: (() => void)[] = [];
  private readonly observers: (() => void)[] = [];
  renewals = 0;
  logins = 0;
  lastError: string | undefined;

  constructor(
    private readonly client: VaultClient,
    private readonly auth: AgentConfig['auth'],
    private readonly log: Log,
  ) {}

  /** Called after every login but the first: whatever the old token issued is going away. */
  onRelogin(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Called after every login, renewal or failure (the state file shows them). */
  onEvent(fn: () => void): void {
    this.observers.push(fn);
  }

  private changed(): void {
    for (const fn of this.observers) fn();
  }

  /** The current token, logging in when there is none (concurrent callers share one login). */
  token(): Promise<string> {
    if (this.held) return Promise.resolve(this.held.token);
    this.pending ??= this.login().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /**
   * `token` was refused: a fresh login, unless the session has moved on to another token since (the change stream
   * and a render may both find out that one token ended; one login replaces it).
   */
  async refused(token: string | undefined): Promise<string> {
    if (this.held && this.held.token !== token) return this.held.token;
    // A 403 is also what a valid token gets for a path its policies do not allow: a new login would not help, and
    // each one would leave another token behind until its TTL.
    if (this.held && (await this.stillValid(this.held.token))) return this.held.token;
    if (this.held) this.log('warn', 'the token was refused; logging in again');
    this.held = undefined;
    return this.token();
  }

  private async stillValid(token: string): Promise<boolean> {
    return (await this.remainingTtl(token)) !== undefined;
  }

  /** The seconds `token` has left (0: no TTL), or undefined when it is no longer valid. */
  private async remainingTtl(token: string): Promise<number | undefined> {
    try {
      const res = (await this.client.request('GET', 'auth/token/lookup-self', {
        token,
        what: 'looking up the agent token',
      })) as { data?: { ttl?: number } } | null;
      return res?.data?.ttl ?? 0;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 403 || err.status === 401)) return undefined;
      throw err;
    }
  }

  private async login(): Promise<string> {
    const where = `auth/${this.auth.mount} as role "${this.auth.role}"`;
    let jwt: string;
    try {
      jwt = (await readFile(this.auth.tokenPath, 'utf8')).trim();
    } catch (err) {
      throw new LoginError(
        `cannot read the service-account token at ${this.auth.tokenPath} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ` +
          'is the projected token volume mounted?',
      );
    }
    let auth: { client_token?: string; accessor?: string; lease_duration?: number; renewable?: boolean } | undefined;
    try {
      const res = (await this.client.request('POST', `auth/${this.auth.mount}/login`, {
        body: { role: this.auth.role, jwt },
        token: null,
        what: `logging in to ${where}`,
      })) as { auth?: typeof auth } | null;
      auth = res?.auth;
    } catch (err) {
      const detail = err instanceof ApiError ? `${err.status}: ${err.errors.join('; ')}` : (err as Error).message;
      throw new LoginError(`login to ${this.client.address} ${where} failed (${detail})`);
    }
    if (!auth?.client_token) throw new LoginError(`login to ${where} returned no token`);
    const first = this.logins === 0;
    this.logins++;
    const ttl = auth.lease_duration ?? 0;
    const renewable = auth.renewable !== false;
    this.held = {
      token: auth.client_token,
      ...(auth.accessor ? { accessor: auth.accessor } : {}),
      ttl,
      renewable,
      granted: ttl,
      expiresAt: expiry(ttl),
    };
    this.lastError = undefined;
    this.log('info', 'logged in', { mount: this.auth.mount, role: this.auth.role, ttl_seconds: this.held.ttl });
    this.schedule(this.held.ttl, this.held.ttl);
    this.changed();
    if (!first) for (const fn of this.listeners) fn();
    return auth.client_token;
  }

  /**
   * Takes over a token another agent run of this pod logged in with (handover.ts), once verifyToken found it valid
   * and a login of this pod's kind; false when this session holds a token already. How it renews comes from Cofre's
   * answer, not from the file that named it. Its renewals are this session's from now on.
   */
  adopt(token: string, verified: TokenVerdict & { ok: true }): boolean {
    if (this.held) return false;
    const { accessor, ttl: remaining, creationTtl: ttl, renewable } = verified;
    // Its last grant is unknown: taken as full, so it is renewed; a capped renewal then leads to a new login.
    this.held = { token, accessor, ttl, renewable, granted: ttl, expiresAt: expiry(remaining) };
    this.logins++;
    this.log('info', 'took over the token of the previous agent run', { ttl_seconds: remaining });
    this.schedule(ttl, ttl);
    this.changed();
    return true;
  }

  /** The token held and how it renews, for the state file; undefined before a login. */
  current(): Readonly<Held> | undefined {
    return this.held;
  }

  /** Keep the token alive from now on (the init container, which exits after rendering, does not). */
  startRenewing(): void {
    this.keepAlive = true;
    if (this.held) this.schedule(this.held.ttl, this.held.granted);
  }

  /** Renews (or replaces, once capped) at two thirds of what is left of the token's time. */
  private schedule(requested: number, granted: number): void {
    clearTimeout(this.timer);
    if (!this.keepAlive || this.stopped || !this.held) return;
    // A token without a TTL (a root-like token) needs nothing; one whose renewal granted nothing is at its end.
    if (requested <= 0) return;
    const step = planRenewal(requested, granted, this.held.renewable);
    const left = this.held.expiresAt ? Math.max(0, (this.held.expiresAt - Date.now()) / 1000) : granted;
    const inMs = Math.min(step.inMs, planRenewal(requested, left, this.held.renewable).inMs);
    this.timer = setTimeout(() => void (step.action === 'renew' ? this.renew() : this.replace()), inMs);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const held = this.held;
    if (!held || this.stopped) return;
    try {
      const granted = await renewSelf(this.client, held.token, held.ttl, 'renewing the agent token');
      this.renewals++;
      this.log('info', 'renewed the token', { ttl_seconds: granted });
      held.granted = granted;
      held.expiresAt = expiry(granted);
      this.schedule(held.ttl, granted);
      this.changed();
    } catch (err) {
      this.lastError = `renewing the token: ${(err as Error).message}`;
      this.log('warn', 'token renewal failed; logging in again', { error: (err as Error).message });
      await this.replace();
    }
  }

  /** A new login replaces the token; retried with back-off until it works or the agent stops. */
  private async replace(delayMs = 1_000): Promise<void> {
    if (this.stopped) return;
    this.held = undefined;
    try {
      await this.token();
    } catch (err) {
      this.lastError = (err as Error).message;
      this.changed();
      this.log('error', 'login failed; retrying', { error: (err as Error).message, retry_in_ms: delayMs });
      this.timer = setTimeout(() => void this.replace(Math.min(delayMs * 2, 30_000)), delayMs);
      this.timer.unref();
    }
  }

  async revoke(): Promise<void> {
    const token = this.held?.token;
    this.stop();
    if (!token) return;
    await this.client.request('PUT', 'auth/token/revoke-self', { body: {}, token, what: 'revoking the agent token' });
    this.held = undefined;
    this.log('info', 'revoked the agent token');
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

const expiry = (seconds: number): number => (seconds > 0 ? Date.now() + seconds * 1000 : 0);

// The KMS plugin's Cofre token, kept valid for as long as the plugin runs. A static pod has no service-account
// token to log in with before the API server is up (the plugin starts first: the API server needs it to read
// Secrets), so it logs in with AppRole (a role_id and a secret_id in files on the control-plane host, which the
// operator can rotate), or uses a token from a file (a periodic token). The token is renewed at about two thirds
// of its TTL; when a renewal fails or is capped, the plugin logs in again (AppRole) or re-reads the file. Whatever
// fails is kept as `lastError`, which Status reports: the API server's health check fails instead of the plugin
// failing silently.
import { readFile } from 'node:fs/promises';
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import { planRenewal, renewSelf } from '../../client/renewal.js';

export type PluginAuthConfig =
  | { method: 'approle'; mount: string; roleIdFile: string; secretIdFile: string }
  | { method: 'token-file'; tokenFile: string };

type Log = (level: 'info' | 'warn', msg: string, fields?: object) => void;

const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export class PluginSession {
  private held: { token: string; ttl: number; renewable: boolean } | undefined;
  private pending: Promise<string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  lastError: string | undefined;

  constructor(
    private readonly client: VaultClient,
    private readonly config: PluginAuthConfig,
    private readonly log: Log,
  ) {}

  /** The token, logging in first when there is none. */
  token(): Promise<string> {
    if (this.held) return Promise.resolve(this.held.token);
    this.pending ??= this.login().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** `token` was refused (403): drop it, so the next call logs in again. */
  refused(token: string): void {
    if (this.held?.token === token) this.held = undefined;
  }

  private async readFileTrimmed(file: string, what: string): Promise<string> {
    try {
      const text = (await readFile(file, 'utf8')).trim();
      if (!text) throw new Error('the file is empty');
      return text;
    } catch (err) {
      throw new Error(
        `cannot read the ${what} at ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }

  private async login(): Promise<string> {
    try {
      let auth: { client_token?: string; lease_duration?: number; renewable?: boolean } | undefined;
      if (this.config.method === 'approle') {
        const roleId = await this.readFileTrimmed(this.config.roleIdFile, 'AppRole role_id');
        const secretId = await this.readFileTrimmed(this.config.secretIdFile, 'AppRole secret_id');
        const res = (await this.client.request('POST', `auth/${this.config.mount}/login`, {
          body: { role_id: roleId, secret_id: secretId },
          token: null,
          what: `logging in to auth/${this.config.mount}`,
        })) as { auth?: typeof auth } | null;
        auth = res?.auth;
      } else {
        const token = await this.readFileTrimmed(this.config.tokenFile, 'token');
        const res = (await this.client.request('GET', 'auth/token/lookup-self', {
          token,
          what: 'looking up the token from the file',
        })) as { data?: { ttl?: number; renewable?: boolean } } | null;
        auth = { client_token: token, lease_duration: res?.data?.ttl ?? 0, renewable: res?.data?.renewable !== false };
      }
      if (!auth?.client_token) throw new Error('the login returned no token');
      this.held = { token: auth.client_token, ttl: auth.lease_duration ?? 0, renewable: auth.renewable !== false };
      this.lastError = undefined;
      this.log('info', 'logged in', { method: this.config.method, ttl_seconds: this.held.ttl });
      this.schedule(this.held.ttl, this.held.ttl);
      return auth.client_token;
    } catch (err) {
      this.lastError = `${this.config.method === 'approle' ? 'AppRole login' : 'token file'}: ${detail(err)}`;
      this.log('warn', 'login failed', { error: this.lastError });
      throw new Error(this.lastError);
    }
  }

  private schedule(requested: number, granted: number): void {
    clearTimeout(this.timer);
    if (this.stopped || !this.held || requested <= 0) return;
    const step = planRenewal(requested, granted, this.held.renewable);
    this.timer = setTimeout(() => void (step.action === 'renew' ? this.renew() : this.replace()), step.inMs);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const held = this.held;
    if (!held || this.stopped) return;
    try {
      const granted = await renewSelf(this.client, held.token, held.ttl, 'renewing the plugin token');
      this.lastError = undefined;
      this.schedule(held.ttl, granted);
    } catch (err) {
      this.log('warn', 'token renewal failed; logging in again', { error: detail(err) });
      await this.replace();
    }
  }

  /** A new login; retried with back-off until it works, so the token never silently runs out. */
  private async replace(delayMs = RETRY_MIN_MS): Promise<void> {
    if (this.stopped) return;
    this.held = undefined;
    try {
      await this.token();
    } catch {
      this.timer = setTimeout(() => void this.replace(Math.min(delayMs * 2, RETRY_MAX_MS)), delayMs);
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

export function detail(err: unknown): string {
  return err instanceof ApiError ? `${err.status}: ${err.errors.join('; ')}` : (err as Error).message;
}

// One subscription to Cofre's change stream (GET /v1/sys/cofre/events, server-sent events) for one token holder. The
// server filters events by what the token may read, so a subscriber only ever learns of paths it may read.
// Reconnects with capped exponential back-off and resumes after the last index it saw (also when a connection brought
// nothing for STREAM_SILENCE_MS, so a dead one is noticed); a `reset` (the resume point was pruned) or an expired
// token are handled by the owner's callbacks. The Kubernetes operator opens one per identity (connection, namespace,
// service account).
import http from 'node:http';
import https from 'node:https';
import { apiUrl } from './client.js';
import { silenceDeadline, silenceMessage, STREAM_SILENCE_MS } from './silence.js';
import { followFrames } from './sse.js';
import { caBundle, type TlsSettings } from './transport.js';

/** A change event names a path and a version, never a value: a frame of a megabyte is no change stream's. */
const MAX_FRAME_CHARS = 1024 * 1024;

export interface ChangeEvent {
  index: number;
  kind: 'write' | 'delete' | string;
  /** "<mount>/<path>" */
  path: string;
  version?: number;
}

export interface ChangeStreamOptions extends TlsSettings {
  address: string;
  /** A Cofre token; `fresh` asks for a new login (the last one was refused). */
  token: (fresh: boolean) => Promise<string>;
  onChange: (ev: ChangeEvent) => void;
  /** Events may have been missed (the server pruned the resume point): resync everything of this identity. */
  onReset: () => void;
  onConnected?: (connected: boolean) => void;
  log?: (msg: string, fields?: object) => void;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** A connection that brings nothing for this long is taken as dead and reconnected (STREAM_SILENCE_MS). */
  silenceMs?: number;
}

export class ChangeStream {
  private lastIndex: number | undefined;
  private closed = false;
  private request: http.ClientRequest | undefined;
  private resolveReady!: () => void;
  /** Resolves once the first `hello` arrived: from then on no change is missed. */
  readonly ready: Promise<void>;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: ChangeStreamOptions) {
    this.ready = new Promise((r) => (this.resolveReady = r));
    void this.loop();
  }

  close(): void {
    this.closed = true;
    this.request?.destroy();
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const min = this.opts.minDelayMs ?? 200;
    const max = this.opts.maxDelayMs ?? 30_000;
    let delay = min;
    let fresh = false;
    while (!this.closed) {
      let outcome: { hello: boolean; refused: boolean; error?: string };
      try {
        const token = await this.opts.token(fresh);
        outcome = await this.connect(token);
      } catch (err) {
        outcome = { hello: false, refused: false, error: (err as Error).message };
      }
      this.opts.onConnected?.(false);
      if (this.closed) break;
      fresh = outcome.refused;
      if (outcome.hello) delay = min;
      if (outcome.error)
        this.opts.log?.('change stream disconnected', { address: this.opts.address, error: outcome.error });
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, delay).unref();
      });
      delay = Math.min(max, delay * 2);
    }
  }

  /** One connection; resolves when it ends, saying whether it got going and whether the token was refused. */
  private connect(token: string): Promise<{ hello: boolean; refused: boolean; error?: string }> {
    const query = this.lastIndex === undefined ? undefined : { index: String(this.lastIndex) };
    const url = apiUrl(this.opts.address, 'sys/cofre/events', query);
    const secure = url.startsWith('https:');
    const silenceMs = this.opts.silenceMs ?? STREAM_SILENCE_MS;
    return new Promise((resolve) => {
      let hello = false;
      let settled = false;
      // Armed once the request is out (below); every byte received pushes it back, and past it the connection is
      // dropped and the loop reconnects.
      const silence = silenceDeadline(silenceMs, () => {
        req.destroy();
        done(false, silenceMessage(silenceMs));
      });
      const done = (refused: boolean, error?: string) => {
        if (settled) return;
        settled = true;
        silence.clear();
        resolve({ hello, refused, error });
      };
      // A CA file that cannot be read ends this attempt like a failed connection (retried with back-off).
      let tls: https.RequestOptions;
      try {
        tls = secure ? { ca: caBundle(this.opts), rejectUnauthorized: !this.opts.tlsSkipVerify } : {};
      } catch (err) {
        done(false, (err as Error).message);
        return;
      }
      const req = (secure ? https : http).request(
        url,
        { method: 'GET', headers: { 'X-Vault-Token': token, Accept: 'text/event-stream' }, ...tls },
        (res) => {
          silence.heard();
          if (res.statusCode !== 200) {
            res.resume();
            done(res.statusCode === 403 || res.statusCode === 401, `HTTP ${res.statusCode}`);
            return;
          }
          followFrames(res, MAX_FRAME_CHARS, {
            heard: () => silence.heard(),
            refused: (message) => {
              req.destroy();
              done(false, message);
            },
            frame: (frame) => {
              if (frame.event === 'hello') {
                hello = true;
                const idx = Number((frame.data as { index?: unknown }).index);
                // On a first connection start from "now"; on a resume, the replay after lastIndex follows.
                if (this.lastIndex === undefined && Number.isFinite(idx)) this.lastIndex = idx;
                this.opts.onConnected?.(true);
                this.resolveReady();
              } else if (frame.event === 'change') {
                const ev = frame.data as unknown as ChangeEvent;
                if (typeof ev.index === 'number') this.lastIndex = ev.index;
                this.opts.onChange(ev);
              } else if (frame.event === 'reset') {
                const idx = Number((frame.data as { index?: unknown }).index);
                if (Number.isFinite(idx)) this.lastIndex = idx;
                this.opts.onReset();
              } else if (frame.event === 'error') {
                // The server ends the stream when the token is revoked or expired: log in again.
                req.destroy();
                done(true, 'token revoked or expired');
              }
            },
          });
          res.on('end', () => done(false, 'stream ended'));
          res.on('error', (err) => done(false, err.message));
        },
      );
      req.on('error', (err) => done(false, err.message));
      silence.heard();
      req.end();
      this.request = req;
    });
  }
}

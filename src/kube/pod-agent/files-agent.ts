// Files mode: render every file item into files_dir once (the init container), then, as a native sidecar, keep them
// current: follow the change stream and re-render a KV item when its secret changes, renew the leases of dynamic
// credentials at about two thirds of their TTL and issue them again before their max TTL, tell the application
// (on_change), and at the end revoke the token and with it its leases.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { VaultClient } from '../../client/client.js';
import { ChangeStream } from '../../client/events.js';
import type { TlsSettings } from '../../client/transport.js';
import { writeFileAtomic } from './atomic-write.js';
import type { AgentConfig, FileOutput, Item } from './config.js';
import { readHandover, removeHandover, writeHandover, type Handover } from './handover.js';
import type { Log } from './log.js';
import { signalApplication } from './notify.js';
import { planRenewal, renewLease, RENEW_FRACTION } from '../../client/renewal.js';
import { renderFile } from './render.js';
import { Session } from './session.js';
import { SourceError, Sources, type Lease } from './sources.js';
import { AgentStatus } from './status.js';
import { podIdentity, verifyToken } from './token-identity.js';

/** Changes that land together (a burst of writes, a re-issue of several leases) make one signal. */
const NOTIFY_DEBOUNCE_MS = 200;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export interface FilesAgentOptions {
  config: AgentConfig;
  /** A client without a token: the agent's own token goes with each request. */
  client: VaultClient;
  tls: TlsSettings;
  log: Log;
  statusFile?: string;
  /** on_change.exit: the agent re-rendered and must now end so the kubelet restarts the container. */
  onExitRequested?: () => void;
}

interface Held {
  lease: Lease;
  /** The TTL first granted, asked for again at each renewal. */
  requested: number;
  /** When the lease runs out as last granted (ms since the epoch). */
  expiresAt: number;
  timer?: NodeJS.Timeout;
}

type FileItem = Item & { output: FileOutput };

export class FilesAgent {
  readonly session: Session;
  readonly status: AgentStatus;
  private readonly sources: Sources;
  private readonly items: FileItem[];
  private readonly digests = new Map<string, string>();
  private readonly leases = new Map<string, Held>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; delay: number }>();
  private stream: ChangeStream | undefined;
  private notifyTimer: NodeJS.Timeout | undefined;
  private following = false;
  private stopped = false;
  /** Whether the state file is kept up to date (the sidecar; the init container writes it once, at its end). */
  private persisting = false;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly opts: FilesAgentOptions) {
    const { config, client, log } = opts;
    this.session = new Session(client, config.auth, log);
    this.sources = new Sources(client);
    this.items = config.items.filter((i): i is FileItem => i.output.kind === 'file');
    this.status = new AgentStatus(this.items, opts.statusFile, () => this.session);
    this.session.onEvent(() => {
      void this.status.save();
      void this.saveState();
    });
    // Leases issued under the old token end with it: issue them again under the new one.
    this.session.onRelogin(() => {
      for (const item of this.items) if (this.leases.has(item.name)) this.queue(item, 'new login');
    });
  }

  /** Renders every file item once; throws one error naming every item that failed. */
  async renderAll(): Promise<void> {
    const adopted = await this.adoptState();
    await this.session.token();
    const failures: string[] = [];
    for (const item of this.items) {
      if (adopted.has(item.name)) continue;
      try {
        await this.render(item, 'start');
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    await this.status.save();
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  /**
   * Takes over the token and the leases in the state file, left by the init container or this sidecar's previous
   * run, when the token is still valid; returns the items whose credential (still in its file) is kept as it is.
   */
  private async adoptState(): Promise<Set<string>> {
    const adopted = new Set<string>();
    const file = this.opts.config.stateFile;
    const read = file ? await readHandover(file) : undefined;
    if (!file || !read || 'absent' in read) return adopted;
    if ('refused' in read) {
      this.opts.log('warn', 'ignoring the state file; logging in', { state_file: file, reason: read.refused });
      await removeHandover(file);
      return adopted;
    }
    const state = read.state;
    // Only the agent containers mount the state volume; the token is checked all the same before it is used.
    const verdict = await verifyToken(this.opts.client, state.token, await podIdentity(this.opts.config.auth));
    if (!verdict.ok || !this.session.adopt(state.token, verdict)) {
      this.opts.log('info', 'not taking over the token in the state file; logging in', {
        state_file: file,
        reason: verdict.ok ? 'the agent holds a token already' : verdict.reason,
      });
      await removeHandover(file);
      return adopted;
    }
    for (const item of this.items) {
      const lease = state.leases[item.name];
      const digest = state.digests[item.name];
      if (digest) this.digests.set(item.name, digest);
      // A lease about to end is issued again rather than taken over; so is one whose file is gone.
      const left = lease ? lease.expiresAt - Date.now() : 0;
      if (!lease || !digest || left < 2_000 || !existsSync(path.join(this.opts.config.filesDir, item.output.path)))
        continue;
      const { requested, expiresAt, ...rest } = lease;
      this.leases.set(item.name, { lease: rest, requested, expiresAt });
      this.status.item(item.name).leaseExpiresAt = new Date(expiresAt).toISOString();
      adopted.add(item.name);
    }
    this.opts.log('info', 'took over the previous agent run’s credentials', { items: [...adopted] });
    return adopted;
  }

  /** Writes the state file once (the init container, handing its token and leases to the sidecar). */
  async handOver(): Promise<void> {
    this.persisting = true;
    await this.saveState();
    this.persisting = false;
  }

  /** The token and leases into the state file, one write at a time, when persisting. */
  private saveState(): Promise<void> {
    const file = this.opts.config.stateFile;
    const held = this.session.current();
    if (!file || !this.persisting || !held) return this.saving;
    const state: Handover = {
      token: held.token,
      ttl: held.ttl,
      renewable: held.renewable,
      leases: Object.fromEntries(
        [...this.leases].map(([name, h]) => [name, { ...h.lease, requested: h.requested, expiresAt: h.expiresAt }]),
      ),
      digests: Object.fromEntries(this.digests),
    };
    this.saving = this.saving
      .then(() => writeHandover(file, state))
      .catch((err: Error) => this.opts.log('warn', 'could not write the state file', { error: err.message }));
    return this.saving;
  }

  /** How many items hold a lease (their credentials end with the token that issued them). */
  leaseCount(): number {
    return this.leases.size;
  }

  /** From now on: follow changes, renew, re-issue, notify. Resolves once the change stream is connected (or 5 s). */
  async follow(): Promise<void> {
    this.following = true;
    this.persisting = true;
    this.session.startRenewing();
    await this.saveState();
    for (const [name, held] of this.leases)
      this.armLease(
        this.items.find((i) => i.name === name)!,
        held,
      );
    if (!this.items.some((i) => i.source.kind === 'kv')) return;
    let streamToken: string | undefined;
    this.stream = new ChangeStream({
      address: this.opts.client.address,
      ...this.opts.tls,
      token: async (fresh) => {
        streamToken = await (fresh ? this.session.refused(streamToken) : this.session.token());
        return streamToken;
      },
      onChange: (ev) => {
        for (const item of this.items) if (this.sources.eventPath(item) === ev.path) this.queue(item, 'change');
      },
      onReset: () => {
        for (const item of this.items) if (item.source.kind === 'kv') this.queue(item, 'reset');
      },
      onConnected: (connected) => {
        this.status.changeStreamConnected = connected;
        void this.status.save();
      },
      log: (msg, fields) => this.opts.log('warn', msg, { ...fields }),
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.stream.ready, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
  }

  /** Re-renders an item after whatever is queued for it, retrying with back-off on failure. */
  private queue(item: FileItem, reason: string): void {
    if (this.stopped) return;
    const previous = this.chains.get(item.name) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (this.stopped) return;
      try {
        const changed = await this.render(item, reason);
        this.clearRetry(item);
        if (changed) this.scheduleNotify();
      } catch (err) {
        this.opts.log('error', 'rendering failed', { item: item.name, reason, error: (err as Error).message });
        this.retry(item);
      }
      await this.status.save();
    });
    this.chains.set(item.name, next);
  }

  private retry(item: FileItem): void {
    const current = this.retries.get(item.name);
    const delay = current ? Math.min(current.delay * 2, RETRY_MAX_MS) : RETRY_MIN_MS;
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => this.queue(item, 'retry'), delay);
    timer.unref();
    this.retries.set(item.name, { timer, delay });
  }

  private clearRetry(item: FileItem): void {
    const current = this.retries.get(item.name);
    if (current) clearTimeout(current.timer);
    this.retries.delete(item.name);
  }

  /** Fetches and writes one item; true when the file's content changed. A refused token gets one new login. */
  private async render(item: FileItem, reason: string): Promise<boolean> {
    const state = this.status.item(item.name);
    let fetched;
    try {
      const token = await this.session.token();
      // A lease is counted from before it was asked for: it began at the server before the answer came back.
      let askedAt = Date.now();
      try {
        fetched = await this.sources.fetch(item, token);
      } catch (err) {
        if (!(err instanceof SourceError) || !err.refused) throw err;
        const again = await this.session.refused(token);
        askedAt = Date.now();
        fetched = await this.sources.fetch(item, again);
      }
      const content = renderFile(item, item.output, fetched.data);
      const digest = createHash('sha256').update(content).digest('hex');
      const changed = this.digests.get(item.name) !== digest;
      if (changed) {
        await writeFileAtomic(path.join(this.opts.config.filesDir, item.output.path), content, item.output.mode);
        this.digests.set(item.name, digest);
      }
      state.renders++;
      state.lastRender = new Date().toISOString();
      if (fetched.version !== undefined) state.version = fetched.version;
      delete state.lastError;
      if (fetched.lease) {
        if (this.leases.has(item.name)) state.leaseReissues++;
        this.keepLease(item, fetched.lease, askedAt);
      }
      this.opts.log('info', changed ? 'rendered' : 'unchanged', {
        item: item.name,
        file: item.output.path,
        reason,
        ...(fetched.version !== undefined ? { version: fetched.version } : {}),
        ...(fetched.lease ? { lease_seconds: fetched.lease.duration } : {}),
      });
      return changed;
    } catch (err) {
      state.lastError = (err as Error).message;
      throw err;
    }
  }

  private keepLease(item: FileItem, lease: Lease, askedAt: number): void {
    const old = this.leases.get(item.name);
    if (old) clearTimeout(old.timer);
    const held: Held = { lease, requested: lease.duration, expiresAt: askedAt + lease.duration * 1000 };
    this.leases.set(item.name, held);
    this.status.item(item.name).leaseExpiresAt = new Date(held.expiresAt).toISOString();
    if (this.following) this.armLease(item, held);
    void this.saveState();
  }

  private armLease(item: FileItem, held: Held, granted = held.lease.duration): void {
    clearTimeout(held.timer);
    if (this.stopped) return;
    const step = planRenewal(held.requested, granted, held.lease.renewable);
    // A lease taken over from an earlier run has less left than it was granted.
    const left = Math.max(0, held.expiresAt - Date.now());
    const inMs = Math.min(step.inMs, Math.max(100, Math.floor(left * RENEW_FRACTION)));
    held.timer = setTimeout(() => {
      if (step.action === 'renew') void this.renewLease(item, held);
      else this.queue(item, 'lease nearing its max TTL');
    }, inMs);
    held.timer.unref();
  }

  private async renewLease(item: FileItem, held: Held): Promise<void> {
    if (this.stopped || this.leases.get(item.name) !== held) return;
    const state = this.status.item(item.name);
    try {
      const askedAt = Date.now();
      const granted = await renewLease(
        this.opts.client,
        await this.session.token(),
        held.lease.id,
        held.requested,
        `renewing the lease of item "${item.name}"`,
      );
      state.leaseRenewals++;
      held.expiresAt = askedAt + granted * 1000;
      state.leaseExpiresAt = new Date(held.expiresAt).toISOString();
      void this.saveState();
      this.opts.log('info', 'renewed a lease', { item: item.name, lease_seconds: granted });
      this.armLease(item, held, granted);
    } catch (err) {
      state.lastError = `renewing the lease: ${(err as Error).message}`;
      this.opts.log('warn', 'lease renewal failed; issuing the credential again', {
        item: item.name,
        error: (err as Error).message,
      });
      this.queue(item, 'lease renewal failed');
    }
    await this.status.save();
  }

  /** Runs on_change (debounced) for a reason other than a file: a credential in an env var nearing its end. */
  requestNotify(): boolean {
    if (!this.opts.config.onChange) return false;
    this.scheduleNotify();
    return true;
  }

  private scheduleNotify(): void {
    const onChange = this.opts.config.onChange;
    if (!onChange || !this.following) return;
    clearTimeout(this.notifyTimer);
    this.notifyTimer = setTimeout(() => void this.notify(), NOTIFY_DEBOUNCE_MS);
    this.notifyTimer.unref();
  }

  private async notify(): Promise<void> {
    const onChange = this.opts.config.onChange!;
    if (onChange.signal) {
      try {
        const pids = await signalApplication(onChange);
        this.status.signals++;
        delete this.status.lastSignalError;
        this.opts.log('info', 'signalled the application', { signal: onChange.signal, pids });
      } catch (err) {
        this.status.lastSignalError = (err as Error).message;
        this.opts.log('warn', 'could not signal the application', { error: (err as Error).message });
      }
      await this.status.save();
    }
    if (onChange.exit) this.opts.onExitRequested?.();
  }

  /** Stops following; with `revoke`, revokes the token, which revokes every lease it holds. */
  async stop(revoke: boolean): Promise<void> {
    this.stopped = true;
    this.stream?.close();
    clearTimeout(this.notifyTimer);
    for (const held of this.leases.values()) clearTimeout(held.timer);
    for (const r of this.retries.values()) clearTimeout(r.timer);
    await Promise.allSettled([...this.chains.values()]);
    if (revoke) {
      this.persisting = false;
      try {
        await this.session.revoke();
        this.opts.log('info', 'revoked the token and its leases', { leases: this.leases.size });
      } catch (err) {
        this.opts.log('error', 'revoking the token failed', { error: (err as Error).message });
      }
      await this.saving;
      if (this.opts.config.stateFile) await removeHandover(this.opts.config.stateFile);
    } else {
      this.session.stop();
    }
  }
}

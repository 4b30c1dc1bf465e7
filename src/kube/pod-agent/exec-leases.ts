// Leases of credentials delivered as environment variables. `cofre agent exec` became the application (execve), so
// nothing in the application's container can renew them; with a sidecar, exec leaves its token and leases in a state
// file (its `state_file`; the sidecar's `exec_state_files` lists them) and the sidecar:
//   - takes the token over and renews it, and renews each lease at about two thirds of its TTL, up to its max TTL;
//   - when a lease nears its end (at once when a renewal is capped by the max TTL, or refused), runs on_change: a SIGTERM to the
//     application restarts its container, whose new `exec` issues new credentials (environment variables cannot
//     change under a running process). Without on_change it says so in its log and state;
//   - when the file is replaced (the container restarted), revokes the old token and its leases: no process uses
//     them any more;
//   - on SIGTERM (the pod is deleted), revokes them all, unless revoke_on_exit is false.
import { stat } from 'node:fs/promises';
import type { VaultClient } from '../../client/client.js';
import type { AgentConfig } from './config.js';
import { readHandover, type HeldLease } from './handover.js';
import type { Log } from './log.js';
import { planRenewal, renewLease, RENEW_FRACTION } from '../../client/renewal.js';
import { Session } from './session.js';

const CHECK_EVERY_MS = 1_000;

interface Adopted {
  mtimeMs: number;
  session: Session;
  timers: Map<string, NodeJS.Timeout>;
}

export interface ExecLeasesOptions {
  files: string[];
  client: VaultClient;
  auth: AgentConfig['auth'];
  log: Log;
  /** A lease of `item` nears its end: the application must restart to get a new credential. */
  onNearingEnd: (file: string, item: string) => void;
}

export class ExecLeases {
  private readonly adopted = new Map<string, Adopted>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> = Promise.resolve();
  private stopped = false;
  renewals = 0;

  constructor(private readonly opts: ExecLeasesOptions) {}

  start(): void {
    const tick = () => {
      this.checking = this.checking.then(() => this.check());
    };
    tick();
    this.timer = setInterval(tick, CHECK_EVERY_MS);
    this.timer.unref();
  }

  /** Takes over each state file that is new or was rewritten since it was last read. */
  private async check(): Promise<void> {
    for (const file of this.opts.files) {
      if (this.stopped) return;
      const mtimeMs = await stat(file).then(
        (s) => s.mtimeMs,
        () => undefined,
      );
      const current = this.adopted.get(file);
      if (mtimeMs === undefined || current?.mtimeMs === mtimeMs) continue;
      const state = await readHandover(file);
      if (!state) continue;
      if (current?.session.current()?.token === state.token) {
        current.mtimeMs = mtimeMs;
        continue;
      }
      const session = new Session(this.opts.client, this.opts.auth, this.opts.log);
      if (!(await session.adopt(state.token, state.ttl, state.renewable))) {
        this.opts.log('warn', 'the token of an exec state file is no longer valid', { state_file: file });
        continue;
      }
      session.startRenewing();
      const adopted: Adopted = { mtimeMs, session, timers: new Map() };
      this.adopted.set(file, adopted);
      for (const [item, lease] of Object.entries(state.leases)) this.arm(file, adopted, item, lease, lease.requested);
      this.opts.log('info', 'renewing the leases of an exec run', {
        state_file: file,
        items: Object.keys(state.leases),
      });
      // The container restarted: its previous process, the only user of the old credentials, is gone.
      if (current) await this.retire(current, 'the container restarted with new credentials');
    }
  }

  private arm(file: string, adopted: Adopted, item: string, lease: HeldLease, granted: number): void {
    clearTimeout(adopted.timers.get(item));
    if (this.stopped) return;
    const step = planRenewal(lease.requested, granted, lease.renewable);
    const left = Math.max(0, lease.expiresAt - Date.now());
    const inMs = Math.min(step.inMs, Math.max(100, Math.floor(left * RENEW_FRACTION)));
    const timer = setTimeout(() => {
      if (step.action === 'renew') void this.renew(file, adopted, item, lease);
      else this.opts.onNearingEnd(file, item);
    }, inMs);
    timer.unref();
    adopted.timers.set(item, timer);
  }

  private async renew(file: string, adopted: Adopted, item: string, lease: HeldLease): Promise<void> {
    if (this.stopped || this.adopted.get(file) !== adopted) return;
    try {
      const granted = await renewLease(
        this.opts.client,
        await adopted.session.token(),
        lease.id,
        lease.requested,
        `renewing the lease of env item "${item}"`,
      );
      lease.expiresAt = Date.now() + granted * 1000;
      this.renewals++;
      this.opts.log('info', 'renewed a lease of an exec run', { item, lease_seconds: granted });
      // Capped by the max TTL: the container needs time to restart and log in, so it is told now, not later.
      if (granted < lease.requested) this.opts.onNearingEnd(file, item);
      else this.arm(file, adopted, item, lease, granted);
    } catch (err) {
      this.opts.log('warn', 'renewing a lease of an exec run failed', { item, error: (err as Error).message });
      this.opts.onNearingEnd(file, item);
    }
  }

  private async retire(adopted: Adopted, why: string): Promise<void> {
    for (const t of adopted.timers.values()) clearTimeout(t);
    try {
      await adopted.session.revoke();
      this.opts.log('info', 'revoked the token of an exec run', { why });
    } catch (err) {
      this.opts.log('warn', 'could not revoke the token of an exec run', { error: (err as Error).message });
    }
  }

  /** Stops renewing; with `revoke`, revokes every exec run's token and with it its leases. */
  async stop(revoke: boolean): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.checking;
    for (const adopted of this.adopted.values()) {
      if (revoke) await this.retire(adopted, 'the agent is stopping');
      else {
        for (const t of adopted.timers.values()) clearTimeout(t);
        adopted.session.stop();
      }
    }
  }
}

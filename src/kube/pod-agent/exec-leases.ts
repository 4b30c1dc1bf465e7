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
//
// The files are written by application containers, so the sidecar reads each as "exec leases reported by container
// X" (each container mounts only its own directory of the exec-state volume; the sidecar mounts it read-only) and
// trusts nothing in one but the token and lease ids, which it checks with Cofre before acting on them:
//   - the file must be a regular file of bounded size (handover.ts: no symbolic link to another container's file or
//     to the agents' own state, no FIFO to hang on);
//   - the token must be a login of this pod's kind (token-identity.ts: this auth mount, role and service account),
//     and neither the sidecar's own token nor one another container's file named;
//   - each lease must be known to Cofre (sys/leases/lookup, with that token); how long it has and whether it renews
//     come from Cofre's answer, not from the file, so a file alone cannot make the sidecar run on_change (a container
//     can still end its own lease or token, whose failed renewal runs it, as it always could).
// A file that fails any check is refused, logged with the reason (never the token), and changes nothing: the run
// the sidecar took over before is kept and renewed as it was. Whatever the sidecar does for a file it does with that
// file's token, never its own: a container gets nothing through it that it could not do with its own login.
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import { planRenewal, renewLease, RENEW_FRACTION } from '../../client/renewal.js';
import type { AgentConfig } from './config.js';
import { readHandover, type HeldLease } from './handover.js';
import type { Log } from './log.js';
import { Session } from './session.js';
import { podIdentity, verifyToken, type PodIdentity } from './token-identity.js';

const CHECK_EVERY_MS = 1_000;

interface Adopted {
  mtimeMs: number;
  accessor: string;
  session: Session;
  timers: Map<string, NodeJS.Timeout>;
}

export interface ExecLeasesOptions {
  files: string[];
  client: VaultClient;
  auth: AgentConfig['auth'];
  log: Log;
  /** The accessor of the sidecar's own token: an exec state file naming it is refused. */
  ownAccessor: () => string | undefined;
  /** A lease of `item` nears its end: the application must restart to get a new credential. */
  onNearingEnd: (file: string, item: string) => void;
}

/** The application container whose directory holds `file` (…/exec-state/<container>/leases.json). */
const containerOf = (file: string): string => path.basename(path.dirname(file));

export class ExecLeases {
  private readonly adopted = new Map<string, Adopted>();
  /** The mtime of each file last refused: a refusal is logged once per write, not every second. */
  private readonly refusals = new Map<string, number>();
  private identity: PodIdentity | undefined;
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

  /** Resolves once every file has been looked at since this call (for tests and a clean stop). */
  settled(): Promise<void> {
    const done = this.checking.then(() => this.check());
    this.checking = done;
    return done;
  }

  /** Takes over each state file that is new or was rewritten since it was last read. */
  private async check(): Promise<void> {
    for (const file of this.opts.files) {
      if (this.stopped) return;
      try {
        await this.checkFile(file);
      } catch (err) {
        // Cofre could not be asked: nothing was decided, the file is read again at the next check.
        this.opts.log('warn', 'could not check an exec state file; trying again', {
          state_file: file,
          container: containerOf(file),
          error: (err as Error).message,
        });
      }
    }
  }

  private async checkFile(file: string): Promise<void> {
    const mtimeMs = await lstat(file).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    const current = this.adopted.get(file);
    if (mtimeMs === undefined || current?.mtimeMs === mtimeMs || this.refusals.get(file) === mtimeMs) return;
    const read = await readHandover(file);
    if ('absent' in read) return;
    if ('refused' in read) return this.refuse(file, mtimeMs, read.refused);
    const state = read.state;
    if (current?.session.current()?.token === state.token) {
      current.mtimeMs = mtimeMs;
      return;
    }
    this.identity ??= await podIdentity(this.opts.auth);
    const verdict = await verifyToken(this.opts.client, state.token, this.identity);
    if (!verdict.ok) return this.refuse(file, mtimeMs, verdict.reason);
    // Taken over, it would be revoked when the container restarts: the sidecar's own, or another container's.
    if (verdict.accessor === this.opts.ownAccessor())
      return this.refuse(file, mtimeMs, 'the token is the sidecar’s own');
    for (const [other, adopted] of this.adopted)
      if (other !== file && adopted.accessor === verdict.accessor)
        return this.refuse(file, mtimeMs, `the token is the one container ${containerOf(other)} reported`);
    const leases = await this.knownLeases(file, state.token, state.leases);
    if (this.stopped) return;
    const session = new Session(this.opts.client, this.opts.auth, this.opts.log);
    session.adopt(state.token, verdict);
    session.startRenewing();
    const adopted: Adopted = { mtimeMs, accessor: verdict.accessor, session, timers: new Map() };
    this.adopted.set(file, adopted);
    this.refusals.delete(file);
    for (const [item, lease] of Object.entries(leases)) this.arm(file, adopted, item, lease, lease.requested);
    this.opts.log('info', 'renewing the leases of an exec run', {
      state_file: file,
      container: containerOf(file),
      items: Object.keys(leases),
    });
    // The container restarted: its previous process, the only user of the old credentials, is gone.
    if (current) await this.retire(current, 'the container restarted with new credentials');
  }

  private refuse(file: string, mtimeMs: number, reason: string): void {
    this.refusals.set(file, mtimeMs);
    this.opts.log('warn', 'refused an exec state file: its leases are not renewed', {
      state_file: file,
      container: containerOf(file),
      reason,
    });
  }

  /**
   * The file's leases that Cofre knows, each with the times Cofre gives it (sys/leases/lookup, with the run's token).
   * One Cofre does not know is left out, with a log line. The token needs sys/leases/lookup (the default policy).
   */
  private async knownLeases(
    file: string,
    token: string,
    listed: Record<string, HeldLease>,
  ): Promise<Record<string, HeldLease>> {
    const known: Record<string, HeldLease> = {};
    for (const [item, lease] of Object.entries(listed)) {
      let info:
        | {
            ttl?: number;
            renewable?: boolean;
            expire_time?: string | null;
            issue_time?: string;
            last_renewal?: string | null;
          }
        | undefined;
      try {
        const res = (await this.opts.client.request('PUT', 'sys/leases/lookup', {
          body: { lease_id: lease.id },
          token,
          what: `looking up the lease of env item "${item}"`,
        })) as { data?: typeof info } | null;
        info = res?.data;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status >= 500) throw err;
        this.opts.log('warn', 'an exec state file names a lease Cofre does not know; not renewing it', {
          state_file: file,
          container: containerOf(file),
          item,
          error: err.errors.join('; ') || String(err.status),
        });
        continue;
      }
      const expiresAt = info?.expire_time ? Date.parse(info.expire_time) : NaN;
      if (!info || !(expiresAt > Date.now())) continue;
      const since = Date.parse(info.last_renewal ?? info.issue_time ?? '');
      // What it was last granted: asked for again at each renewal, so a capped renewal shows the max TTL is near.
      const requested = Number.isFinite(since) ? Math.max(1, Math.round((expiresAt - since) / 1000)) : (info.ttl ?? 1);
      known[item] = {
        id: lease.id,
        duration: info.ttl ?? requested,
        renewable: info.renewable === true,
        requested,
        expiresAt,
      };
    }
    return known;
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
      const token = await adopted.session.token();
      const askedAt = Date.now(); // the lease's new end counts from before the answer came back
      const granted = await renewLease(
        this.opts.client,
        token,
        lease.id,
        lease.requested,
        `renewing the lease of env item "${item}"`,
      );
      lease.expiresAt = askedAt + granted * 1000;
      this.renewals++;
      this.opts.log('info', 'renewed a lease of an exec run', {
        container: containerOf(file),
        item,
        lease_seconds: granted,
      });
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

// Reconciles a CofreSecret asks for at a time of its own (a rollout to measure, a lease to renew, replace or
// revoke). Kept apart from the work queue's delayed adds, where an earlier pending add wins: a renewal must never be
// pushed back by an unrelated later refresh, so here the earliest time wins and each key has one timer.
export class FollowUps {
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private stopped = false;

  constructor(private readonly enqueue: (key: string) => void) {}

  /** Enqueues the key in `ms`, unless a follow-up of it is already due sooner. */
  after(key: string, ms: number): void {
    if (this.stopped) return;
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        this.enqueue(key);
        // Node fires a longer timer at once: a far follow-up comes early and the reconcile asks again.
      },
      Math.min(ms, 2 ** 31 - 1),
    );
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  cancel(key: string): void {
    const existing = this.timers.get(key);
    if (existing) clearTimeout(existing.timer);
    this.timers.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

/**
 * Requests in flight, so that a seal can let them finish first, as Vault's seal waits on its state lock. A handler
 * sealed under its feet stops between two of its writes (a token stored without its lease, a credential created
 * without one): once a seal begins, new requests are refused and the running ones end before the keys go.
 */
export class RequestGate {
  private running = 0;
  private closing: Promise<void> | undefined;
  private idle: (() => void) | undefined;

  /** True from the moment a seal begins waiting: requests that come now are answered as if sealed. */
  get draining(): boolean {
    return this.closing !== undefined;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Counts a request in; the returned function counts it out (call it exactly once). */
  enter(): () => void {
    this.running++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.running--;
      if (this.running === 0) this.idle?.();
    };
  }

  /**
   * Runs `seal` once the requests in flight have ended, or after `timeoutMs` when one hangs (a seal must happen:
   * the operator asked for it). Concurrent calls share one wait and one seal.
   */
  close(seal: () => void, timeoutMs: number): Promise<void> {
    if (this.closing) return this.closing;
    const closing = this.drained(timeoutMs)
      .then(seal)
      .finally(() => {
        this.idle = undefined;
        if (this.closing === closing) this.closing = undefined;
      });
    this.closing = closing;
    return closing;
  }

  private async drained(timeoutMs: number): Promise<void> {
    if (this.running === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
  }
}

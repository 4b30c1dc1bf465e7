// A Cofre address that let a call run into its deadline is not called again for a while: the reconcile workers are
// shared by every namespace, and a connection's address is its namespace's choice. Without this, each CofreSecret
// of a namespace whose server trickles its answers held a worker for the whole deadline on every retry.
import { VaultClient, type ClientConfig, type RequestOptions } from '../../client/client.js';
import { UnreachableError } from '../../client/errors.js';

/** How long an address that did not answer in time is not called. */
export const SLOW_ADDRESS_PAUSE_MS = 30_000;

export class SlowAddresses {
  private readonly pausedUntil = new Map<string, number>();

  constructor(private readonly pauseMs = SLOW_ADDRESS_PAUSE_MS) {}

  /** A client for `config.address` whose calls fail at once while the address is paused. */
  client(config: ClientConfig): VaultClient {
    return new GuardedClient(config, this);
  }

  /** Throws while `address` is paused (it has not answered in time lately). */
  check(address: string): void {
    const until = this.pausedUntil.get(address);
    if (until === undefined) return;
    if (Date.now() >= until) {
      this.pausedUntil.delete(address);
      return;
    }
    throw new UnreachableError(
      `${address} did not answer in time lately: not called again before ${new Date(until).toISOString()}`,
      address,
      'no answer in time lately (paused)',
    );
  }

  /** Pauses `address` when `err` says a call to it ran into its deadline. */
  report(address: string, err: unknown): void {
    if (!(err instanceof UnreachableError) || !/no answer in time/.test(err.reason)) return;
    const now = Date.now();
    // Addresses are a namespace's to choose: forget the pauses that are over before the list grows large.
    if (this.pausedUntil.size >= 1024)
      for (const [a, until] of this.pausedUntil) if (until <= now) this.pausedUntil.delete(a);
    this.pausedUntil.set(address, now + this.pauseMs);
  }
}

class GuardedClient extends VaultClient {
  constructor(
    config: ClientConfig,
    private readonly slow: SlowAddresses,
  ) {
    super(config);
  }

  override async request(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    this.slow.check(this.address);
    try {
      return await super.request(method, path, opts);
    } catch (err) {
      this.slow.report(this.address, err);
      throw err;
    }
  }
}

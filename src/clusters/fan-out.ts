import type { SetEntry } from './desired-state.js';

/**
 * One connected agent's stream. What it has not been sent yet is a map delivery → revision: a burst of changes
 * to one delivery collapses into its latest revision, so memory per agent is bounded by its deliveries, however
 * slowly it reads.
 */
export class AgentConnection {
  /** What this agent was last told, delivery → revision. */
  private readonly sent = new Map<string, number>();
  private readonly pending = new Map<string, number>();
  private wake: (() => void) | undefined;
  /** Asked to return from next() even with nothing pending (tick). */
  private ticked = false;
  closed = false;

  constructor(
    readonly cluster: string,
    readonly clusterId: string,
  ) {}

  /** The full set, as sent in `hello`: everything after it is a difference from it. */
  greet(set: SetEntry[]): void {
    this.sent.clear();
    this.pending.clear();
    for (const entry of set) this.sent.set(entry.delivery, entry.revision);
  }

  /** The cluster's set now: what differs from what it was told is queued. */
  update(set: SetEntry[]): void {
    for (const entry of set) {
      if (this.sent.get(entry.delivery) === entry.revision) this.pending.delete(entry.delivery);
      else this.pending.set(entry.delivery, entry.revision);
    }
    this.wakeUp();
  }

  close(): void {
    this.closed = true;
    this.wakeUp();
  }

  /**
   * Makes next() return now, with nothing if nothing is pending: the stream then checks that its token still
   * works and writes a ping. (A bare wakeUp() left next() waiting on: a stream whose token was revoked stayed
   * open until the next change of the cluster's set.)
   */
  tick(): void {
    this.ticked = true;
    this.wakeUp();
  }

  wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Waits until something is pending, a tick, or the connection closes (or the signal aborts). */
  async next(signal: AbortSignal): Promise<{ delivery: string; revision: number }[]> {
    while (this.pending.size === 0 && !this.ticked && !this.closed && !signal.aborted) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    this.ticked = false;
    const out = [...this.pending].map(([delivery, revision]) => ({ delivery, revision }));
    for (const { delivery, revision } of out) this.sent.set(delivery, revision);
    this.pending.clear();
    return out;
  }
}

/** The connected agents by cluster name. */
export class FanOut {
  private readonly byCluster = new Map<string, Set<AgentConnection>>();
  /** Event ids of the agent stream: increasing on this node. */
  private seq = 0;

  add(connection: AgentConnection): void {
    let set = this.byCluster.get(connection.cluster);
    if (!set) this.byCluster.set(connection.cluster, (set = new Set()));
    set.add(connection);
  }

  remove(connection: AgentConnection): void {
    const set = this.byCluster.get(connection.cluster);
    set?.delete(connection);
    if (set?.size === 0) this.byCluster.delete(connection.cluster);
  }

  connectedClusters(): string[] {
    return [...this.byCluster.keys()];
  }

  connections(cluster: string): AgentConnection[] {
    return [...(this.byCluster.get(cluster) ?? [])];
  }

  /** A deregistered cluster's streams end at once. */
  disconnect(cluster: string): void {
    for (const connection of this.connections(cluster)) connection.close();
  }

  nextId(): string {
    return String(++this.seq);
  }

  get size(): number {
    let n = 0;
    for (const set of this.byCluster.values()) n += set.size;
    return n;
  }
}

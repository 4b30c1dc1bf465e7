/**
 * Change notification between nodes sharing a PostgreSQL store. A writer sends pg_notify in the transaction of its
 * write, so PostgreSQL delivers it only if (and once) the write commits; each node LISTENs on a client of its own,
 * outside the pool, because a pooled connection may be handed to a query or closed at any time.
 */
import pg from 'pg';
import { logEntryKey } from '../core/storage.js';
import { backoff, connectClient, dedicatedClient, type Connection } from './postgres-connection.js';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7999;
/**
 * An idle LISTEN connection notices a dead server (or a network that silently drops it) only when it sends
 * something. Until then the node would miss other nodes' changes without knowing, so it pings often: such a loss is
 * noticed within three seconds, and the node then holds requests until it listens again (ChangeFeed.deaf).
 */
const PING_INTERVAL_MS = 1000;
const PING_TIMEOUT_MS = 2000;

export type ChangeListener = (keys: string[] | undefined) => void;

interface Payload {
  node: string;
  /** null: too many keys to name; every cache must go. */
  keys: string[] | null;
}

const MAX_LOG_COUNT = 100_000;
/** What the batch function announces of the entries it appended to a log: `count` positions from `first`. */
interface LogPayload {
  node: string;
  log: string;
  first: number;
  count: number;
}

/**
 * The NOTIFY payloads for one commit by `node`: `groups` are the keys of each write it carries (a group-committed
 * batch holds many). Groups are packed whole into as few payloads as fit PostgreSQL's limit, so that a listener
 * never hears half of one write's keys in one notification and the rest in the next. A group too big for any
 * payload is announced as "everything may have changed", once.
 */
export function changePayloads(node: string, groups: string[][]): string[] {
  const payloads: string[] = [];
  const everything = JSON.stringify({ node, keys: null } satisfies Payload);
  const overhead = Buffer.byteLength(JSON.stringify({ node, keys: [] } satisfies Payload));
  let keys: string[] = [];
  let bytes = overhead;
  const close = () => {
    if (keys.length > 0) payloads.push(JSON.stringify({ node, keys } satisfies Payload));
    keys = [];
    bytes = overhead;
  };
  for (const group of groups) {
    // Each key costs its JSON string and a comma.
    const size = group.reduce((sum, key) => sum + Buffer.byteLength(JSON.stringify(key)) + 1, 0);
    if (overhead + size > MAX_PAYLOAD_BYTES) {
      if (!payloads.includes(everything)) payloads.push(everything);
      continue;
    }
    if (bytes + size > MAX_PAYLOAD_BYTES) close();
    keys.push(...group);
    bytes += size;
  }
  close();
  return payloads;
}

/** What a received payload means for node `self`: ignore (its own), or the keys (undefined: everything). */
export function parsePayload(payload: string | undefined, self: string): { own: true } | { keys?: string[] } {
  try {
    const p = JSON.parse(payload ?? '') as Partial<Payload & LogPayload>;
    if (p.node === self) return { own: true };
    if (Array.isArray(p.keys) && p.keys.every((k) => typeof k === 'string')) return { keys: p.keys };
    const { log, first, count } = p;
    // A batch appends a few hundred entries at most; a larger count is not ours, and is taken as "anything".
    if (
      typeof log === 'string' &&
      Number.isSafeInteger(first) &&
      Number.isSafeInteger(count) &&
      count! > 0 &&
      count! <= MAX_LOG_COUNT
    ) {
      return { keys: Array.from({ length: count! }, (_, i) => logEntryKey(log, first! + i)) };
    }
  } catch {
    // Not ours to understand (another version, someone's manual NOTIFY): treated as "anything may have changed".
  }
  return {};
}

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private client: pg.Client | undefined;
  private started: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private ping: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  /** Set from the loss of the listening connection until a new one listens (and everything was announced). */
  private deafness: { heard: Promise<void>; hear: () => void } | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly channel: string,
    private readonly nodeId: string,
  ) {}

  /** Resolves once this node is listening; the first connection's failure rejects (and forgets the listener). */
  async add(listener: ChangeListener): Promise<void> {
    if (this.stopped) throw new Error('postgres storage is closed');
    this.listeners.add(listener);
    this.started ??= this.listen();
    try {
      await this.started;
    } catch (err) {
      this.listeners.delete(listener);
      this.started = undefined;
      throw err;
    }
  }

  /**
   * Set while this node may be missing other nodes' changes (its listening connection was lost and no new one
   * listens yet): resolves once one does, after the listeners heard that anything may have changed.
   */
  deaf(): Promise<void> | undefined {
    return this.deafness?.heard;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.hearing();
    clearTimeout(this.retry);
    clearInterval(this.ping);
    this.listeners.clear();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async listen(): Promise<void> {
    const client = dedicatedClient(this.conn, `cofre listen ${this.nodeId}`, PING_TIMEOUT_MS, () => this.lost(client));
    client.on('notification', (msg) => this.deliver(msg.payload));
    await connectClient(this.conn, client);
    try {
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.failures = 0;
    clearInterval(this.ping);
    this.ping = setInterval(() => void client.query('SELECT 1').catch(() => this.lost(client)), PING_INTERVAL_MS);
    this.ping.unref();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    clearInterval(this.ping);
    client.end().catch(() => {});
    if (!this.deafness) {
      let hear = (): void => undefined;
      const heard = new Promise<void>((resolve) => (hear = resolve));
      this.deafness = { heard, hear };
    }
    this.reconnect();
  }

  private hearing(): void {
    this.deafness?.hear();
    this.deafness = undefined;
  }

  private reconnect(): void {
    this.retry = setTimeout(() => {
      this.listen().then(
        // Whatever was committed while nobody listened went unannounced.
        () => {
          this.broadcast(undefined);
          this.hearing();
        },
        () => {
          if (!this.stopped) this.reconnect();
        },
      );
    }, backoff(this.failures++));
    this.retry.unref();
  }

  private deliver(payload: string | undefined): void {
    const change = parsePayload(payload, this.nodeId);
    if (!('own' in change)) this.broadcast(change.keys);
  }

  private broadcast(keys: string[] | undefined): void {
    if (this.stopped) return;
    for (const listener of this.listeners) {
      try {
        listener(keys);
      } catch {
        // One listener's bug must not stop the others from hearing, nor take the LISTEN connection down.
      }
    }
  }
}

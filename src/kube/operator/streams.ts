// The change-stream subscriptions: one per identity (connection, namespace, service account), opened on the first
// reconcile that needs it and closed when no CofreSecret uses it any more. A change event enqueues the CofreSecrets
// of that identity whose <mount>/<path> it names; a reset enqueues all of them.
import { ChangeStream, type ChangeEvent } from '../../client/events.js';
import type { CofreAccess, Identity } from './cofre-client.js';
import type { Log } from './log.js';
import { changeEvents, streamsConnected } from './metrics.js';
import type { CofreSecret } from './types.js';

/** How long a reconcile waits for a new subscription before reading anyway (the read is still correct; only a write
 * landing in that window would wait for the next resync). */
const SUBSCRIBE_WAIT_MS = 5_000;

interface Entry {
  stream: ChangeStream;
  identity: Identity;
  connected: boolean;
}

export class Streams {
  private readonly entries = new Map<string, Entry>();
  /** CofreSecret key → identity key, from its last reconcile. */
  private readonly identityOf = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly access: CofreAccess,
    private readonly deps: {
      /** CofreSecrets the informer currently knows, to match events against. */
      list: () => readonly CofreSecret[];
      keyOf: (cs: CofreSecret) => string;
      enqueue: (key: string, ev?: ChangeEvent) => void;
      log: Log;
    },
  ) {}

  async subscribe(id: Identity, csKey: string): Promise<void> {
    // A reconcile still in flight while the operator stops must not open a stream nobody would close.
    if (this.closed) return;
    // The object moved to another identity (its connection changed): drop the old stream if now unused.
    if (this.identityOf.has(csKey) && this.identityOf.get(csKey) !== id.key) this.forget(csKey);
    this.identityOf.set(csKey, id.key);
    let entry = this.entries.get(id.key);
    if (!entry) {
      const e: Entry = {
        identity: id,
        connected: false,
        stream: new ChangeStream({
          address: id.address,
          caCertBytes: id.caPem,
          token: async (fresh) => {
            if (fresh) this.access.invalidate(id);
            return this.access.token(id, fresh);
          },
          onChange: (ev) => {
            changeEvents.inc({ kind: ev.kind });
            for (const key of this.matching(id.key, ev.path)) this.deps.enqueue(key, ev);
          },
          onReset: () => {
            changeEvents.inc({ kind: 'reset' });
            for (const key of this.matching(id.key)) this.deps.enqueue(key);
          },
          onConnected: (connected) => {
            if (connected !== e.connected) streamsConnected.inc(connected ? 1 : -1);
            e.connected = connected;
          },
          // The stream logs only its disconnections: it reconnects by itself, so a warning.
          log: (msg, fields) => this.deps.log(msg, fields, 'warn'),
        }),
      };
      entry = e;
      this.entries.set(id.key, entry);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([entry.stream.ready, new Promise((r) => (timer = setTimeout(r, SUBSCRIBE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** The CofreSecret keys of this identity (reading `path`, when given). */
  private matching(idKey: string, path?: string): string[] {
    const out: string[] = [];
    for (const cs of this.deps.list()) {
      const key = this.deps.keyOf(cs);
      if (this.identityOf.get(key) !== idKey) continue;
      if (path !== undefined && `${cs.spec.source.mount}/${cs.spec.source.path}` !== path) continue;
      out.push(key);
    }
    return out;
  }

  /** A CofreSecret is gone: close its identity's stream if nothing else uses it. */
  forget(csKey: string): void {
    const idKey = this.identityOf.get(csKey);
    this.identityOf.delete(csKey);
    if (idKey === undefined) return;
    for (const other of this.identityOf.values()) if (other === idKey) return;
    const entry = this.entries.get(idKey);
    if (!entry) return;
    entry.stream.close();
    if (entry.connected) streamsConnected.dec();
    entry.connected = false;
    this.entries.delete(idKey);
  }

  connectedCount(): number {
    return [...this.entries.values()].filter((e) => e.connected).length;
  }

  closeAll(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      e.stream.close();
      if (e.connected) streamsConnected.dec();
      e.connected = false;
    }
    this.entries.clear();
    this.identityOf.clear();
  }
}

/**
 * Audit devices when several server threads serve one store. Each file has one hash chain, whoever writes to it:
 *
 * - A file device in a thread appends to the file itself, under the lock of the file's ChainCell, which the primary
 *   thread hands every thread opening the same file (src/audit/chain-cell.ts). Relaying each line to one thread
 *   cost two thread hops per request, most of an audited request's time.
 * - Other devices (a socket, standard output) are relays (relayedAuditDevices): their entries (formatted and HMAC'd
 *   by the thread's broker) are chained and written by the primary's AuditHost, in the order they arrive, and a
 *   request goes on only once its entry is written, as with a device of its own (fail-closed).
 */
import { FileChains, fileSink, type FileDeviceConfig, type SharedChains } from '../audit/file.js';
import {
  betweenWrites,
  writeChained,
  type AuditSink,
  type AuditSinkFactory,
  type ChainedSink,
} from '../core/audit-broker.js';
import { GENESIS } from '../core/audit-chain.js';
import type { Rpc } from './rpc.js';

/** A server thread's file devices: files written by the thread, on the chain the primary shares out. */
export function threadFileDevices(primary: () => Rpc): AuditSinkFactory {
  const chains: SharedChains = {
    take: (options) => primary().call('audit.takeChain', options),
    give: (real) => primary().call('audit.giveChain', real),
  };
  const relay = relayedAuditDevices(primary, ['file']).file!;
  // Standard output is the process's: its lines go through the primary like a socket's.
  return (options) =>
    (options.file_path ?? options.path) === 'stdout' ? relay(options) : fileSink(options, {}, chains);
}

/** The audit device types of a server thread: each one a relay to the primary's device of the same options. */
export function relayedAuditDevices(primary: () => Rpc, types: string[]): Record<string, AuditSinkFactory> {
  return Object.fromEntries(
    types.map((type): [string, AuditSinkFactory] => [
      type,
      (options) => {
        let id: number | undefined;
        // The entries of one event-loop turn go to the primary in one message: one per entry made the two thread
        // hops per entry most of an audited request's time (measured with a socket device: 9.3 k reads/s on two
        // threads against 12.4 k on one).
        let turn: { entry: Record<string, unknown>; resolve: () => void; reject: (err: unknown) => void }[] = [];
        const send = (): void => {
          if (turn.length === 0) return; // sent already, by close()
          const batch = turn;
          turn = [];
          primary()
            .call('audit.writeMany', { id, entries: batch.map((w) => w.entry) })
            .then(
              () => batch.forEach((w) => w.resolve()),
              (err: unknown) => batch.forEach((w) => w.reject(err)),
            );
        };
        const sink: AuditSink = {
          open: async () => {
            const opened = await primary().call<{ id: number; readable: boolean }>('audit.open', { type, options });
            id = opened.id;
            // Only a device the primary can read back (a file) offers recent(), as a device of this thread would.
            if (opened.readable) sink.recent = (limit) => primary().call('audit.recent', { id, limit });
            return GENESIS; // the primary keeps the chain
          },
          write: () => Promise.reject(new Error('a relayed audit device takes entries, not lines')),
          writeEntry: (entry) =>
            new Promise<void>((resolve, reject) => {
              turn.push({ entry, resolve, reject });
              if (turn.length === 1) setImmediate(send);
            }),
          close: async () => {
            // Entries of this turn go before the close, which the primary then waits for (messages keep their order).
            if (turn.length > 0) send();
            if (id !== undefined) await primary().call('audit.close', id);
            id = undefined;
          },
        };
        return sink;
      },
    ]),
  );
}

interface HostedDevice extends ChainedSink {
  key: string;
  users: number;
}

/** The primary's side: one real device per distinct (type, options), shared by the threads that relay to it. */
export class AuditHost {
  private readonly byKey = new Map<string, HostedDevice>();
  private readonly byId = new Map<number, HostedDevice>();
  private readonly ids = new Map<HostedDevice, number>();
  private next = 1;
  /** The chain of each audit file the threads write. */
  private readonly chains: FileChains;

  constructor(
    private readonly factories: Record<string, AuditSinkFactory>,
    fileConfig: FileDeviceConfig,
  ) {
    this.chains = new FileChains(fileConfig);
  }

  /**
   * The chain of the file a thread's device opens (continued from the file's last line when no thread holds it yet),
   * confined here with the server's audit_file_path_prefix.
   */
  takeChain(options: Record<string, string>): Promise<{ real: string; cell: SharedArrayBuffer }> {
    return this.chains.take(options);
  }

  giveChain(real: string): Promise<void> {
    return this.chains.give(real);
  }

  async open({
    type,
    options,
  }: {
    type: string;
    options: Record<string, string>;
  }): Promise<{ id: number; readable: boolean }> {
    const id = await this.share(type, options);
    return { id, readable: this.byId.get(id)?.sink.recent !== undefined };
  }

  private async share(type: string, options: Record<string, string>): Promise<number> {
    const key = JSON.stringify([type, Object.entries(options).sort()]);
    let device = this.byKey.get(key);
    if (device) {
      device.users++;
      return this.ids.get(device)!;
    }
    const factory = Object.hasOwn(this.factories, type) ? this.factories[type] : undefined;
    if (!factory) throw new Error(`unknown audit device type "${type}"`);
    const sink = factory(options);
    const chain = await sink.open();
    // Another thread may have opened the same device while this one awaited.
    const raced = this.byKey.get(key);
    if (raced) {
      await sink.close().catch(() => undefined);
      raced.users++;
      return this.ids.get(raced)!;
    }
    device = { key, sink, chain, queue: Promise.resolve(), waiting: [], users: 1 };
    const id = this.next++;
    this.byKey.set(key, device);
    this.byId.set(id, device);
    this.ids.set(device, id);
    return id;
  }

  /** A thread's entries of one turn, written in order (in one write, by writeChained); settles when all are. */
  async writeMany({ id, entries }: { id: number; entries: Record<string, unknown>[] }): Promise<void> {
    const device = this.byId.get(id);
    if (!device) throw new Error('the audit device is closed');
    const write = (entry: Record<string, unknown>): Promise<void> =>
      device.sink.writeEntry ? device.sink.writeEntry(entry) : writeChained(device, entry);
    await Promise.all(entries.map(write));
  }

  /** The device's last lines, read between two whole writes. */
  recent({ id, limit }: { id: number; limit: number }): Promise<{ lines: string[]; truncated: boolean }> {
    const device = this.byId.get(id);
    const recent = device?.sink.recent?.bind(device.sink);
    if (!device || !recent) return Promise.reject(new Error('the audit device cannot be read back'));
    return betweenWrites(device, () => recent(limit));
  }

  async close(id: number): Promise<void> {
    const device = this.byId.get(id);
    if (!device || --device.users > 0) return;
    this.byId.delete(id);
    this.byKey.delete(device.key);
    this.ids.delete(device);
    await device.queue;
    await device.sink.close();
  }

  /** SIGHUP: every device lets go of its file and opens it again (log rotation). */
  async reopen(): Promise<void> {
    this.chains.reopenAll();
    await Promise.all([...this.byKey.values()].map((d) => d.sink.reopen?.()));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.byId.keys()].map((id) => this.close(id).catch(() => undefined)));
  }
}

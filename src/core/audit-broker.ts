import { randomBytes } from 'node:crypto';
import type { InvalidationRegistry } from './invalidation.js';
import { CallerHashMemo, formatEntry, hasherFor, type AuditEvent, type Hasher } from './audit-format.js';
import { chainLine, type ChainState } from './audit-chain.js';
import { badRequest, CofreError } from './errors.js';
import { retryOnConflict } from './conflict-retry.js';
import type { Storage } from './storage.js';
import { jsonBytes, parseJson } from './storage-view.js';
import { OneAtATime } from './one-at-a-time.js';
import { getOwn } from './own-keys.js';

/** A sink for audit lines. `open` returns the chain state to continue from (e.g. the last line of a file). */
export interface AuditSink {
  open(): Promise<ChainState>;
  /** Writes the whole text (one or more lines) or fails; a failed write must leave nothing of it behind. */
  write(line: string): Promise<void>;
  close(): Promise<void>;
  /** Lets go of the destination and opens it again (log rotation, SIGHUP); the hash chain goes on. */
  reopen?(): Promise<void>;
  /**
   * A sink that chains entries itself (a server thread's relay to the device its primary thread holds,
   * src/workers/audit-relay.ts) takes each formatted entry here instead of a line.
   */
  writeEntry?(entry: Record<string, unknown>): Promise<void>;
  /**
   * The last `limit` lines the device wrote, newest first, for devices that keep them where the server can read
   * (a file). A device without it (a socket, standard output) cannot be read back.
   */
  recent?(limit: number): Promise<{ lines: string[]; truncated: boolean }>;
}

export type AuditSinkFactory = (options: Record<string, string>) => AuditSink;

/** What sys/audit/:path enables: the path, the device type, its description, its options, and whether it is local. */
type DeviceToEnable = [
  path: string,
  type: string,
  description: string,
  options: Record<string, string>,
  local: boolean,
];

export interface AuditTableEntry {
  path: string;
  type: string;
  description: string;
  options: Record<string, string>;
  local: boolean;
  /** Per-device HMAC salt, base64; the table lives behind the barrier. */
  salt: string;
}

/** A sink with the chain it continues: what chains and writes one entry after another. */
export interface ChainedSink {
  sink: AuditSink;
  chain: ChainState;
  /** Lines of one device are written in order, one write after another, so the chain holds. */
  queue: Promise<void>;
  /** Entries waiting for the next write. */
  waiting: { entry: Record<string, unknown>; resolve: () => void; reject: (err: unknown) => void }[];
}

interface Device extends ChainedSink {
  entry: AuditTableEntry;
  hash: Hasher;
  callers: CallerHashMemo;
  /** Set once its close began: a device in two maps (kept by a load, closing on seal) is closed once. */
  closed?: boolean;
}

/** Runs `read` in the device's queue, so that no line is half-written while it reads. */
export function betweenWrites<T>(device: ChainedSink, read: () => Promise<T>): Promise<T> {
  const run = device.queue.then(read);
  device.queue = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}

/**
 * Chains the entry and writes it after every entry given before it, so the chain holds. The entries of one turn of
 * the event loop, and those that come in while a write is under way, go out together in the next write (one write
 * call, not one per entry): whole or not at all, as the sink writes, so they are all written or all refused. The
 * chain moves on only when the sink took them.
 */
export function writeChained(device: ChainedSink, entry: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    device.waiting.push({ entry, resolve, reject });
    // The first to wait schedules the write that takes all who wait by the time it starts: at the end of this turn,
    // not at once. A socket's write completes at once when the kernel takes it, so writing at once sent one line
    // per system call (measured: the socket device's writes were a fifth of a server thread, and a third of the
    // reads/s of a file device).
    if (device.waiting.length === 1) {
      device.queue = device.queue
        .then(() => new Promise<void>((turn) => setImmediate(turn)))
        .then(() => writeWaiting(device));
    }
  });
}

async function writeWaiting(device: ChainedSink): Promise<void> {
  const batch = device.waiting.splice(0);
  let chain = device.chain;
  let text = '';
  for (const { entry } of batch) {
    const { line, next } = chainLine(entry, chain);
    text += line + '\n';
    chain = next;
  }
  try {
    await device.sink.write(text);
    device.chain = chain;
    for (const waiter of batch) waiter.resolve();
  } catch (err) {
    for (const waiter of batch) waiter.reject(err);
  }
}

const TABLE_KEY = 'core/audit';
/** How long closing devices waits for running requests to write their response entry. */
const DRAIN_MS = 10_000;

function testEvent(path: string): AuditEvent {
  return {
    time: new Date(),
    type: 'request',
    requestId: 'audit-device-test',
    operation: 'update',
    path: `sys/audit/${path}`,
    mountType: 'system',
    remoteAddress: '',
    clientToken: undefined,
    caller: undefined,
    requestData: { test: 'this entry tests that the audit device can write' },
    error: '',
  };
}

/** Closes devices once the lines already queued for them are written; each device once, whoever asks. */
async function closeDevices(devices: Iterable<Device>): Promise<void> {
  const closing = [...new Set(devices)].filter((d) => !d.closed);
  for (const device of closing) device.closed = true;
  await Promise.allSettled(closing.map((d) => d.queue.then(() => d.sink.close())));
}

/** No enabled device could record a request: the request is refused. */
export class AuditFailure extends CofreError {
  constructor() {
    super(500, 'internal error: no audit device could record the request, so it was refused');
  }
}

/**
 * The audit broker: every audited request and response goes to every enabled device. Fail-closed: when devices
 * are enabled and none could write, the caller gets an error and must not answer with data.
 */
export class AuditBroker {
  private devices = new Map<string, Device>();
  private table: AuditTableEntry[] = [];
  /**
   * Requests whose request entry is written and whose response entry is still to come. Sealing closes the
   * devices only once these are done: sys/seal itself seals from inside its handler, and its response (and that
   * of any request already running) must still reach the log, or the caller would get a 500 for a seal that
   * happened, and the log would miss its outcome.
   */
  private inFlight = new Set<string>();
  /** Counts the times the table became empty, each of which gave up the requests in flight (setTable). */
  private emptied = 0;
  private idle: (() => void)[] = [];
  /**
   * The last load could not read the table (the store did not answer, after Core's retries): a device enabled
   * elsewhere may be missing here, so requests are not served unaudited; each one tries the load again first.
   */
  private unknown = false;
  private loadingAgain: Promise<void> | undefined;
  /** Counts seals (closeAll): a load that a seal overtook installs nothing. */
  private seals = 0;
  /** The value of `seals` when the installed devices were loaded. */
  private loadedAfterSeal = 0;
  /** Loads, enables and disables run one at a time: each reads the table the one before it left. */
  private readonly changes = new OneAtATime();
  /**
   * The table as this node last read or wrote it: an enable or disable commits only if the store still holds that.
   * `changes` keeps this node's changes in turn, not another node's: a node that had not heard of a device enabled
   * elsewhere wrote its own table over it, and the device was gone from every node (or a disabled one came back).
   */
  private stored: Uint8Array | null = null;

  constructor(
    private readonly barrier: Storage,
    private readonly factories: Record<string, AuditSinkFactory>,
  ) {}

  /** The audit table is this broker's: another node enabled or disabled a device, so the devices are loaded again. */
  registerInvalidation(registry: InvalidationRegistry): void {
    const load = (): Promise<void> => this.load();
    registry.on(TABLE_KEY, { stage: 'audit', apply: load, reload: load });
  }

  get enabled(): boolean {
    return this.devices.size > 0;
  }

  /**
   * Whether an entry logged now would be written: a device is in the table, or the table is not known (log() then
   * loads it, and refuses the request if it cannot). When not, log() would do nothing, and a request spares building
   * the entry. Asked at each entry, as log() decides: a request must not go unrecorded because it began before a
   * device was enabled.
   */
  get wanted(): boolean {
    return this.unknown || this.table.length > 0;
  }

  /**
   * Opens the devices of the table as stored: on unseal, and when another node enabled or disabled one. The new set
   * is built aside and swapped in at once, so a request running meanwhile still finds the devices it was audited by
   * (emptying the set first answered 500 to requests in that window, and left unaudited those served while the first
   * device enabled elsewhere was opening). A device whose entry did not change stays open: its chain and its queue go
   * on. Those removed are closed once their queued lines are written.
   */
  load(): Promise<void> {
    // Counted when asked, not when its turn comes: a load asked for before a seal installs nothing after it.
    const seals = this.seals;
    return this.changes.run(() => this.loadNow(seals));
  }

  private async loadNow(seals: number): Promise<void> {
    let table: AuditTableEntry[];
    let stored: Uint8Array | null;
    try {
      stored = (await this.barrier.get(TABLE_KEY)) ?? null;
      table = stored ? parseJson<AuditTableEntry[]>(stored) : [];
    } catch (err) {
      // The table may have changed and cannot be read: requests are refused until a load succeeds (log()).
      if (this.seals === seals) this.unknown = true;
      throw err;
    }
    const devices = new Map<string, Device>();
    for (const entry of table) {
      const current = this.devices.get(entry.path);
      if (current && !current.closed && JSON.stringify(current.entry) === JSON.stringify(entry)) {
        devices.set(entry.path, current);
        continue;
      }
      try {
        devices.set(entry.path, await this.start(entry));
      } catch {
        // A device that cannot open now stays in the table; with none writable, requests are refused.
      }
    }
    const kept = new Set(devices.values());
    if (this.seals !== seals) {
      // Sealed while it loaded: closeAll closes what is installed; what this load opened is not installed.
      const installed = new Set(this.devices.values());
      await closeDevices([...devices.values()].filter((d) => !installed.has(d)));
      return;
    }
    const gone = [...this.devices.values()].filter((device) => !kept.has(device));
    this.setTable(table);
    this.stored = stored;
    this.devices = devices;
    this.loadedAfterSeal = seals;
    this.unknown = false;
    // Not awaited: requests held for this load (Core.requestHold) go on once the new devices are in place,
    // while the removed ones write what is queued for them and close.
    void closeDevices(gone);
  }

  /**
   * Runs an enable or disable after every other change of this node. Its commit is refused when another node
   * changed the table since this node read it: the table is then loaded again and the change decided again on it.
   */
  private change(step: () => Promise<void>): Promise<void> {
    return this.changes.run(() =>
      retryOnConflict(
        async (refused) => {
          if (refused) await this.loadNow(this.seals);
          await step();
        },
        () => new CofreError(409, 'the audit table kept changing on other nodes while this change was made: try again'),
      ),
    );
  }

  /** Writes the table if the store still holds it as this node last read or wrote it (StorageConflictError if not). */
  private async commitTable(table: AuditTableEntry[]): Promise<void> {
    const value = jsonBytes(table);
    await this.barrier.transaction([
      { op: 'check', key: TABLE_KEY, value: this.stored },
      { op: 'put', key: TABLE_KEY, value },
    ]);
    this.stored = value;
  }

  list(): AuditTableEntry[] {
    return this.table;
  }

  enable(...device: DeviceToEnable): Promise<void> {
    return this.change(() => this.enableNow(...device));
  }

  private async enableNow(...[path, type, description, options, local]: DeviceToEnable): Promise<void> {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    if (normalized === '/') throw badRequest('audit device path must not be empty');
    if (this.table.some((e) => e.path === normalized)) throw badRequest(`path already in use: ${normalized}`);
    if (!Object.hasOwn(this.factories, type))
      throw badRequest(`unknown audit device type "${type}" (supported: ${Object.keys(this.factories).join(', ')})`);
    const entry: AuditTableEntry = {
      path: normalized,
      type,
      description,
      options,
      local,
      salt: randomBytes(32).toString('base64'),
    };
    let device: Device | undefined;
    try {
      device = await this.start(entry);
      // As Vault does, a device must take a test entry before it is trusted with requests.
      await this.write(device, testEvent(normalized));
    } catch (err) {
      await device?.sink.close().catch(() => undefined);
      throw badRequest(`cannot enable audit device "${normalized}": ${(err as Error).message}`);
    }
    // Stored first, then table and device in place together: a request meanwhile never finds an entry whose
    // device is not open (with no other device, that refused it), and a failed write leaves nothing behind.
    const table = [...this.table, entry];
    try {
      await this.commitTable(table);
    } catch (err) {
      await closeDevices([device]);
      throw err;
    }
    this.setTable(table);
    this.devices.set(normalized, device);
  }

  disable(path: string): Promise<void> {
    return this.change(() => this.disableNow(path));
  }

  private async disableNow(path: string): Promise<void> {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    const table = this.table.filter((e) => e.path !== normalized);
    await this.commitTable(table);
    this.setTable(table);
    const device = this.devices.get(normalized);
    this.devices.delete(normalized);
    if (device) await closeDevices([device]);
  }

  /** sys/audit-hash: what a value looks like in this device's log. */
  hash(path: string, input: string): string {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    const entry = this.table.find((e) => e.path === normalized);
    if (!entry) throw badRequest(`unknown audit device "${normalized}"`);
    // The open device's hasher when it has this salt: a new one hashes its fixed texts first (hasherFor).
    const open = this.devices.get(normalized);
    const hash = open?.entry.salt === entry.salt ? open.hash : hasherFor(Buffer.from(entry.salt, 'base64'));
    return hash(input);
  }

  /**
   * sys/cofre/audit-log: the device's last entries as it wrote them (every value HMAC'd with its salt). Read in
   * the device's queue, so no line is half-written while it is read.
   */
  async recent(path: string, limit: number): Promise<{ type: string; entries: unknown[]; truncated: boolean }> {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    const entry = this.table.find((e) => e.path === normalized);
    if (!entry) throw badRequest(`unknown audit device "${normalized}"`);
    const device = this.devices.get(normalized);
    if (!device) throw new CofreError(503, `audit device "${normalized}" is not open on this server now`);
    const recent = device.sink.recent?.bind(device.sink);
    if (!recent) {
      const kind = entry.type === 'file' ? 'a file device writing to standard output' : `a ${entry.type} device`;
      throw badRequest(
        `audit device "${normalized}" is ${kind}: its entries are where it sends them and cannot be read back here`,
      );
    }
    const { lines, truncated } = await betweenWrites(device, () => recent(limit));
    const entries: unknown[] = [];
    for (const line of lines) {
      try {
        entries.push(JSON.parse(line));
      } catch {
        // Not a line of ours (the file was written to by something else): left out rather than echoed.
      }
    }
    return { type: entry.type, entries, truncated };
  }

  /** Writes the event to every device; throws unless at least one succeeded (when any is enabled). */
  async log(event: AuditEvent): Promise<void> {
    if (this.unknown) await this.loadAgain();
    if (this.table.length === 0) return;
    const emptied = this.emptied;
    try {
      const results = await Promise.allSettled([...this.devices.values()].map((d) => this.write(d, event)));
      if (!results.some((r) => r.status === 'fulfilled')) {
        throw new AuditFailure();
      }
      // Unless the table emptied while the entry was written: no response entry will come for it (setTable).
      if (event.type === 'request' && this.emptied === emptied) this.inFlight.add(event.requestId);
    } finally {
      if (event.type === 'response') this.finished(event.requestId);
    }
  }

  /** One load at a time for the requests that find the table unknown; refused (fail-closed) while it fails. */
  private async loadAgain(): Promise<void> {
    this.loadingAgain ??= this.load().finally(() => (this.loadingAgain = undefined));
    try {
      await this.loadingAgain;
    } catch {
      throw new AuditFailure();
    }
  }

  /**
   * Closes every device (on seal), once the requests already on record have their response written too, or after
   * DRAIN_MS for one that hangs.
   */
  async closeAll(): Promise<void> {
    const seal = ++this.seals;
    const closing = [...this.devices.values()];
    await this.drained();
    await this.changes.run(async () => {
      if (this.loadedAfterSeal === seal) {
        // An unseal meanwhile has loaded the devices again, keeping those whose entry did not change: those stay.
        const inUse = new Set(this.devices.values());
        await closeDevices(closing.filter((device) => !inUse.has(device)));
        return;
      }
      const installed = [...this.devices.values()];
      this.devices = new Map();
      await closeDevices([...closing, ...installed]);
    });
  }

  /** Reopens every device's destination (SIGHUP: a log rotated by an outside tool). */
  async reopen(): Promise<void> {
    await Promise.allSettled(
      [...this.devices.values()].map((d) => {
        const run = d.queue.then(() => d.sink.reopen?.());
        d.queue = run.catch(() => undefined);
        return run;
      }),
    );
  }

  /**
   * With no device left in the table, no response entry will be written for the requests on record (log() writes
   * nothing, and requests no longer build entries): a seal has nothing left to wait for.
   */
  private setTable(table: AuditTableEntry[]): void {
    this.table = table;
    if (table.length > 0) return;
    this.emptied++;
    this.inFlight.clear();
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private finished(requestId: string): void {
    this.inFlight.delete(requestId);
    if (this.inFlight.size > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private drained(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.inFlight.clear();
        resolve();
      }, DRAIN_MS);
      timer.unref();
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async start(entry: AuditTableEntry): Promise<Device> {
    const factory = getOwn(this.factories, entry.type);
    if (!factory) throw new Error(`unknown audit device type "${entry.type}"`);
    const sink = factory(entry.options);
    const chain = await sink.open();
    const hash = hasherFor(Buffer.from(entry.salt, 'base64'));
    return { entry, sink, hash, callers: new CallerHashMemo(hash), chain, queue: Promise.resolve(), waiting: [] };
  }

  /**
   * Formats outside the device's queue, so a big entry being hashed does not hold up the small ones behind it;
   * chaining and writing go through the queue (writeChained).
   */
  private async write(device: Device, event: AuditEvent): Promise<void> {
    const entry = await formatEntry(event, device.hash, device.callers);
    if (device.sink.writeEntry) return device.sink.writeEntry(entry);
    return writeChained(device, entry);
  }
}

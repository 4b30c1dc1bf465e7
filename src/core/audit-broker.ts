import { randomBytes } from 'node:crypto';
import { formatEntry, hasherFor, type AuditEvent, type Hasher } from './audit-format.js';
import { chainLine, type ChainState } from './audit-chain.js';
import { badRequest, CofreError } from './errors.js';
import type { Storage } from './storage.js';
import { getJson, putJson } from './storage-view.js';

/** A sink for audit lines. `open` returns the chain state to continue from (e.g. the last line of a file). */
export interface AuditSink {
  open(): Promise<ChainState>;
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

export type AuditSinkFactory = (options: Record<string, string>) => AuditSink;

export interface AuditTableEntry {
  path: string;
  type: string;
  description: string;
  options: Record<string, string>;
  local: boolean;
  /** Per-device HMAC salt, base64; the table lives behind the barrier. */
  salt: string;
}

interface Device {
  entry: AuditTableEntry;
  sink: AuditSink;
  hash: Hasher;
  chain: ChainState;
  /** Lines of one device are written in order, one after another, so the chain holds. */
  queue: Promise<void>;
}

const TABLE_KEY = 'core/audit';

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

  constructor(
    private readonly barrier: Storage,
    private readonly factories: Record<string, AuditSinkFactory>,
  ) {}

  get enabled(): boolean {
    return this.devices.size > 0;
  }

  async load(): Promise<void> {
    await this.closeAll();
    this.table = (await getJson<AuditTableEntry[]>(this.barrier, TABLE_KEY)) ?? [];
    for (const entry of this.table) {
      try {
        this.devices.set(entry.path, await this.start(entry));
      } catch {
        // A device that cannot open now stays in the table; with none writable, requests are refused.
      }
    }
  }

  list(): AuditTableEntry[] {
    return this.table;
  }

  async enable(
    path: string,
    type: string,
    description: string,
    options: Record<string, string>,
    local: boolean,
  ): Promise<void> {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    if (normalized === '/') throw badRequest('audit device path must not be empty');
    if (this.table.some((e) => e.path === normalized)) throw badRequest(`path already in use: ${normalized}`);
    if (!this.factories[type])
      throw badRequest(`unknown audit device type "${type}" (supported: ${Object.keys(this.factories).join(', ')})`);
    const entry: AuditTableEntry = {
      path: normalized,
      type,
      description,
      options,
      local,
      salt: randomBytes(32).toString('base64'),
    };
    let device: Device;
    try {
      device = await this.start(entry);
      // As Vault does, a device must take a test entry before it is trusted with requests.
      await this.write(device, testEvent(normalized));
    } catch (err) {
      throw badRequest(`cannot enable audit device "${normalized}": ${(err as Error).message}`);
    }
    this.table = [...this.table, entry];
    await putJson(this.barrier, TABLE_KEY, this.table);
    this.devices.set(normalized, device);
  }

  async disable(path: string): Promise<void> {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    this.table = this.table.filter((e) => e.path !== normalized);
    await putJson(this.barrier, TABLE_KEY, this.table);
    const device = this.devices.get(normalized);
    this.devices.delete(normalized);
    await device?.sink.close();
  }

  /** sys/audit-hash: what a value looks like in this device's log. */
  hash(path: string, input: string): string {
    const normalized = path.replace(/^\/+|\/+$/g, '') + '/';
    const entry = this.table.find((e) => e.path === normalized);
    if (!entry) throw badRequest(`unknown audit device "${normalized}"`);
    return hasherFor(Buffer.from(entry.salt, 'base64'))(input);
  }

  /** Writes the event to every device; throws unless at least one succeeded (when any is enabled). */
  async log(event: AuditEvent): Promise<void> {
    if (this.table.length === 0) return;
    const results = await Promise.allSettled([...this.devices.values()].map((d) => this.write(d, event)));
    if (!results.some((r) => r.status === 'fulfilled')) {
      throw new AuditFailure();
    }
  }

  async closeAll(): Promise<void> {
    const devices = [...this.devices.values()];
    this.devices = new Map();
    await Promise.allSettled(devices.map((d) => d.queue.then(() => d.sink.close())));
  }

  private async start(entry: AuditTableEntry): Promise<Device> {
    const sink = this.factories[entry.type]!(entry.options);
    const chain = await sink.open();
    return { entry, sink, hash: hasherFor(Buffer.from(entry.salt, 'base64')), chain, queue: Promise.resolve() };
  }

  private write(device: Device, event: AuditEvent): Promise<void> {
    const run = device.queue.then(async () => {
      const { line, next } = chainLine(formatEntry(event, device.hash), device.chain);
      await device.sink.write(line + '\n');
      device.chain = next;
    });
    device.queue = run.catch(() => undefined);
    return run;
  }
}

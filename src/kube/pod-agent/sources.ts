// Reading an item's secret with the agent's token: a KV secret (finding out v1 or v2 from the mount, as the CLI's
// kv commands do) or any other readable path, whose lease, if it has one, the agent then keeps. Errors name the
// item and the path, never a value.
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import type { Item } from './config.js';

export class SourceError extends Error {
  constructor(
    message: string,
    /** The token was refused: a new login may help. */
    readonly refused = false,
  ) {
    super(message);
  }
}

export interface Lease {
  id: string;
  /** Seconds, as granted. */
  duration: number;
  renewable: boolean;
}

export interface Fetched {
  data: Record<string, unknown>;
  lease?: Lease;
  /** KV v2: the version read. */
  version?: number;
}

interface KvMount {
  mount: string;
  version: 1 | 2;
  key: string;
}

type SecretBody = {
  data?: Record<string, unknown> | null;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
} | null;

export class Sources {
  private readonly kvMounts = new Map<string, KvMount>();

  constructor(private readonly client: VaultClient) {}

  /** "<mount>/<key>" as the change stream names a KV secret (undefined before the first read, or for a path). */
  eventPath(item: Item): string | undefined {
    const kv = this.kvMounts.get(item.name);
    return kv ? `${kv.mount}${kv.key}` : undefined;
  }

  async fetch(item: Item, token: string): Promise<Fetched> {
    try {
      return item.source.kind === 'kv' ? await this.readKv(item, token) : await this.readPath(item, token);
    } catch (err) {
      if (err instanceof SourceError) throw err;
      if (err instanceof ApiError) {
        const refused = err.status === 403;
        const why = refused ? 'permission denied' : `${err.status}: ${err.errors.join('; ') || 'error'}`;
        throw new SourceError(`item "${item.name}": reading ${item.source.path} failed (${why})`, refused);
      }
      throw new SourceError(`item "${item.name}": reading ${item.source.path} failed (${(err as Error).message})`);
    }
  }

  private async kvMount(item: Item, token: string): Promise<KvMount> {
    const known = this.kvMounts.get(item.name);
    if (known) return known;
    const res = (await this.client.request('GET', `sys/internal/ui/mounts/${item.source.path}`, {
      token,
      what: `finding the KV mount of ${item.source.path}`,
    })) as { data?: { path?: string; type?: string; options?: Record<string, string> | null } } | null;
    const info = res?.data;
    if (!info?.path) throw new SourceError(`item "${item.name}": no mount serves ${item.source.path}`);
    const mount = info.path.endsWith('/') ? info.path : `${info.path}/`;
    const version = info.options?.version === '2' || info.type === 'kv-v2' ? 2 : 1;
    const found: KvMount = { mount, version, key: `${item.source.path}/`.slice(mount.length).replace(/\/$/, '') };
    if (!found.key) throw new SourceError(`item "${item.name}": kv "${item.source.path}" names a mount, not a secret`);
    this.kvMounts.set(item.name, found);
    return found;
  }

  private async readKv(item: Item, token: string): Promise<Fetched> {
    const kv = await this.kvMount(item, token);
    const apiPath = kv.version === 2 ? `${kv.mount}data/${kv.key}` : `${kv.mount}${kv.key}`;
    const res = (await this.client.request('GET', apiPath, {
      token,
      notFound: 'null',
      what: `reading ${item.source.path}`,
    })) as SecretBody;
    if (kv.version === 2) {
      const inner = res?.data as { data?: Record<string, unknown> | null; metadata?: { version?: number } } | undefined;
      if (!inner?.data)
        throw new SourceError(`item "${item.name}": ${item.source.path} does not exist (or is deleted)`);
      return { data: inner.data, version: inner.metadata?.version };
    }
    if (!res?.data) throw new SourceError(`item "${item.name}": ${item.source.path} does not exist`);
    return { data: res.data };
  }

  private async readPath(item: Item, token: string): Promise<Fetched> {
    const res = (await this.client.request('GET', item.source.path, {
      token,
      notFound: 'null',
      what: `reading ${item.source.path}`,
    })) as SecretBody;
    if (!res?.data) throw new SourceError(`item "${item.name}": ${item.source.path} has nothing to read`);
    const lease =
      res.lease_id && (res.lease_duration ?? 0) > 0
        ? { id: res.lease_id, duration: res.lease_duration!, renewable: res.renewable !== false }
        : undefined;
    return { data: res.data, ...(lease ? { lease } : {}) };
  }
}

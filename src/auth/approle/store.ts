import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseCidrs } from '../../core/cidr.js';
import { createOnce } from '../../core/create-once.js';
import { retryOnConflict } from '../../core/conflict-retry.js';
import { badRequest, CofreError } from '../../core/errors.js';
import { KeyLocks } from '../../core/key-locks.js';
import { isStorageConflict, type Storage, type StorageOp } from '../../core/storage.js';
import { getJson, jsonBytes, parseJson } from '../../core/storage-view.js';
import { NO_TOKEN_PARAMS, type TokenParams } from '../token-fields.js';

/**
 * The AppRole method's storage, on the mount's own view:
 * - `salt`: the per-mount HMAC key (random, created on first use); role IDs, secret IDs and accessors are stored
 *   only as HMAC-SHA256(salt, value), never in the clear;
 * - `role/<name>`: a role (names are lower-cased, as Vault's);
 * - `role-id/<hmac(role_id)>`: which role a role ID belongs to;
 * - `secret-id/<hmac(role name)>/<hmac(secret_id)>`: a secret ID's properties;
 * - `accessor/<hmac(accessor)>`: which secret ID an accessor names.
 */
export interface AppRole extends TokenParams {
  /** The name as stored (lower case). */
  name: string;
  /**
   * Random, new with each creation of the role: a secret ID carries its role's uid, so one left behind by a
   * deleted role never works for a new role of the same name.
   */
  uid: string;
  role_id: string;
  bind_secret_id: boolean;
  secret_id_bound_cidrs: string[];
  secret_id_num_uses: number;
  /** Seconds; 0 = secret IDs do not expire (beyond the mount's max TTL). */
  secret_id_ttl: number;
  local_secret_ids: boolean;
}

export interface SecretIdEntry {
  /** HMAC of the secret ID itself, checked against the key it was found under. */
  secret_id_hmac: string;
  role_name: string;
  role_uid: string;
  secret_id_accessor: string;
  /** Uses left; 0 = unlimited. */
  secret_id_num_uses: number;
  secret_id_ttl: number;
  creation_time: string;
  /** "" = does not expire. */
  expiration_time: string;
  last_updated_time: string;
  metadata: Record<string, string>;
  cidr_list: string[];
  token_bound_cidrs: string[];
}

interface AccessorEntry {
  secret_id_hmac: string;
  role_hmac: string;
}

/** Vault's limit on what it HMACs; longer role names, role IDs and secret IDs are refused before any work. */
export const MAX_INPUT_BYTES = 4096;

/** Vault's role names (framework.GenericNameRegex): word characters, "-" and ".", starting and ending with a word character. */
const ROLE_NAME = /^\w(?:[\w.-]*\w)?$/;

export function validRoleName(name: string): boolean {
  return Buffer.byteLength(name) <= MAX_INPUT_BYTES && ROLE_NAME.test(name);
}

export function checkRoleName(name: string): string {
  if (Buffer.byteLength(name) > MAX_INPUT_BYTES) {
    throw badRequest(`role_name is longer than maximum of ${MAX_INPUT_BYTES} bytes`);
  }
  if (!ROLE_NAME.test(name)) {
    throw badRequest(
      'invalid role name: only letters, digits, "_", "-" and "." are allowed, starting and ending with a letter or digit',
    );
  }
  return name.toLowerCase();
}

const roleKey = (name: string): string => `role/${name.toLowerCase()}`;

export function isExpired(entry: SecretIdEntry, now = Date.now()): boolean {
  return entry.expiration_time !== '' && Date.parse(entry.expiration_time) <= now;
}

/** Whether every block of `inner` lies within one block of `outer` (no outer blocks: no constraint). */
export function cidrSubset(inner: string[], outer: string[]): boolean {
  if (outer.length === 0) return true;
  const outers = outer.map((block) => ({ prefix: prefixOf(block), list: parseCidrs([block], 'role CIDR blocks') }));
  return inner.every((block) => {
    const [address = ''] = block.split('/');
    const prefix = prefixOf(block);
    const family = address.includes(':') ? 'ipv6' : 'ipv4';
    return outers.some((o) => o.prefix <= prefix && o.list.check(address, family));
  });
}

function prefixOf(block: string): number {
  const [address = '', prefix] = block.split('/');
  return prefix === undefined ? (address.includes(':') ? 128 : 32) : Number(prefix);
}

export class AppRoleStore {
  private salt: Buffer | undefined;
  /** Role changes (and secret ID creation, which must not outlive its role's deletion) under the role's name. */
  readonly roleLocks = new KeyLocks();
  /** Uses, destruction and expiry of one secret ID, under its HMAC. */
  readonly secretLocks = new KeyLocks();
  private readonly saltLock = new KeyLocks();

  constructor(readonly storage: Storage) {}

  /**
   * Reads or creates the salt when the method is mounted, before any client can use it: two nodes creating it
   * at once on first use would each HMAC with their own. Lazily again if storage is not readable now.
   */
  async init(): Promise<void> {
    await this.key().catch(() => undefined);
  }

  /** Another node changed the salt (it created it first): read it again. */
  forgetSalt(): void {
    this.salt = undefined;
  }

  private async key(): Promise<Buffer> {
    if (this.salt) return this.salt;
    return this.saltLock.run('salt', async () => {
      if (this.salt) return this.salt;
      return (this.salt = Buffer.from(await createOnce(this.storage, 'salt', () => randomBytes(32))));
    });
  }

  async hmac(value: string): Promise<string> {
    return createHmac('sha256', await this.key())
      .update(value)
      .digest('hex');
  }

  async readRole(name: string): Promise<AppRole | undefined> {
    if (!validRoleName(name)) return undefined;
    const stored = await getJson<AppRole>(this.storage, roleKey(name));
    return stored ? { ...NO_TOKEN_PARAMS, ...stored } : undefined;
  }

  /** The role a role ID belongs to, or undefined. */
  async roleByRoleId(roleId: string): Promise<AppRole | undefined> {
    if (roleId === '' || Buffer.byteLength(roleId) > MAX_INPUT_BYTES) return undefined;
    const index = await getJson<{ name: string }>(this.storage, `role-id/${await this.hmac(roleId)}`);
    if (!index) return undefined;
    const role = await this.readRole(index.name);
    // An index left behind by a role whose ID changed is not a way in.
    return role && role.role_id === roleId ? role : undefined;
  }

  /**
   * Writes a role, made by `change` from the one stored (undefined: none), with its role-ID index, in one
   * transaction that checks both are still what was read. The role's lock (and a mount-wide one for the index) keep
   * this node's writers in turn; the checks keep other nodes' out: a role deleted on another node meanwhile is
   * decided on again (not simply made again), and two nodes cannot give one role ID to two roles.
   */
  async changeRole(name: string, change: (current: AppRole | undefined) => Promise<AppRole> | AppRole): Promise<void> {
    const key = roleKey(name);
    await this.roleLocks.run(name, () =>
      retryOnConflict(
        async () => {
          const stored = (await this.storage.get(key)) ?? null;
          const role = await change(stored ? { ...NO_TOKEN_PARAMS, ...parseJson<AppRole>(stored) } : undefined);
          if (Buffer.byteLength(role.role_id) > MAX_INPUT_BYTES) {
            throw badRequest(`role_id is longer than maximum of ${MAX_INPUT_BYTES} bytes`);
          }
          const indexKey = `role-id/${await this.hmac(role.role_id)}`;
          await this.roleLocks.run('\0role-ids', async () => {
            const index = (await this.storage.get(indexKey)) ?? null;
            if (index && parseJson<{ name: string }>(index).name !== role.name)
              throw badRequest('role_id already in use');
            const ops: StorageOp[] = [
              { op: 'check', key, value: stored },
              { op: 'check', key: indexKey, value: index },
              { op: 'put', key, value: jsonBytes(role) },
              { op: 'put', key: indexKey, value: jsonBytes({ name: role.name }) },
            ];
            const previousRoleId = stored ? parseJson<AppRole>(stored).role_id : undefined;
            if (previousRoleId !== undefined && previousRoleId !== role.role_id) {
              ops.push({ op: 'delete', key: `role-id/${await this.hmac(previousRoleId)}` });
            }
            await this.storage.transaction(ops);
          });
        },
        () => new CofreError(409, `role "${name}" kept changing on other nodes while this write was made: try again`),
      ),
    );
  }

  /**
   * Deletes a role with its role-ID index, then every secret ID it issued, each under its lock (so that no login
   * in flight writes one back). Under the role's lock. A crash in between leaves secret IDs whose role_uid no
   * role has: login refuses them and tidy removes them.
   */
  async deleteRole(role: AppRole): Promise<void> {
    const roleIdKey = `role-id/${await this.hmac(role.role_id)}`;
    await this.roleLocks.run('\0role-ids', () =>
      this.storage.transaction([
        { op: 'delete', key: roleIdKey },
        { op: 'delete', key: roleKey(role.name) },
      ]),
    );
    const roleHmac = await this.hmac(role.name);
    for (const secretHmac of await this.storage.list(`secret-id/${roleHmac}/`)) {
      const key = `secret-id/${roleHmac}/${secretHmac}`;
      await this.secretLocks.run(secretHmac, async () => {
        const entry = await getJson<SecretIdEntry>(this.storage, key);
        if (entry) await this.deleteSecret(key, entry);
      });
    }
  }

  async secretKey(roleName: string, secretId: string): Promise<{ key: string; secretHmac: string }> {
    const roleHmac = await this.hmac(roleName.toLowerCase());
    const secretHmac = await this.hmac(secretId);
    return { key: `secret-id/${roleHmac}/${secretHmac}`, secretHmac };
  }

  /** The entry stored under key, if it is the entry of that secret ID (compared in constant time). */
  async readSecret(key: string, secretHmac: string): Promise<SecretIdEntry | undefined> {
    return (await this.readSecretAsStored(key, secretHmac))?.entry;
  }

  /** The same, with the bytes it was read from: what a change of it checks (useSecret). */
  async readSecretAsStored(
    key: string,
    secretHmac: string,
  ): Promise<{ entry: SecretIdEntry; stored: Uint8Array } | undefined> {
    const stored = await this.storage.get(key);
    const entry = stored === undefined ? undefined : parseJson<SecretIdEntry>(stored);
    if (!stored || !entry || typeof entry.secret_id_hmac !== 'string') return undefined;
    const known = Buffer.from(entry.secret_id_hmac, 'hex');
    const given = Buffer.from(secretHmac, 'hex');
    return known.length === given.length && timingSafeEqual(known, given) ? { entry, stored } : undefined;
  }

  /**
   * Takes one use of a secret ID read as `stored`: deletes it with its last use, else stores one use fewer. The
   * commit checks that the entry is still what was read: the secret ID's lock spans this node only, and two nodes
   * taking the last use at once would have logged in twice with it (StorageConflictError: read it again).
   */
  async useSecret(key: string, entry: SecretIdEntry, stored: Uint8Array): Promise<void> {
    const check: StorageOp = { op: 'check', key, value: stored };
    if (entry.secret_id_num_uses === 1) {
      await this.deleteSecret(key, entry, check);
    } else if (entry.secret_id_num_uses > 1) {
      const next = {
        ...entry,
        secret_id_num_uses: entry.secret_id_num_uses - 1,
        last_updated_time: new Date().toISOString(),
      };
      await this.storage.transaction([check, { op: 'put', key, value: jsonBytes(next) }]);
    }
  }

  /**
   * Stores a new secret ID and its accessor. Refuses a secret ID the role already has (custom-secret-id), also one
   * registered on another node at the same moment (the commit checks that there was none).
   */
  async createSecret(roleName: string, secretId: string, entry: Omit<SecretIdEntry, 'secret_id_hmac'>): Promise<void> {
    const { key, secretHmac } = await this.secretKey(roleName, secretId);
    const registered = () => badRequest('SecretID is already registered');
    await this.secretLocks.run(secretHmac, async () => {
      if (await this.storage.get(key)) throw registered();
      const accessor: AccessorEntry = { secret_id_hmac: secretHmac, role_hmac: await this.hmac(roleName) };
      await this.storage
        .transaction([
          { op: 'check', key, value: null },
          { op: 'put', key: `accessor/${await this.hmac(entry.secret_id_accessor)}`, value: jsonBytes(accessor) },
          { op: 'put', key, value: jsonBytes({ ...entry, secret_id_hmac: secretHmac }) },
        ])
        .catch((err: unknown) => {
          throw isStorageConflict(err) ? registered() : err;
        });
    });
  }

  /** Deletes a secret ID and its accessor together, if `checks` hold. Under the secret ID's lock. */
  async deleteSecret(key: string, entry: SecretIdEntry, ...checks: StorageOp[]): Promise<void> {
    await this.storage.transaction([
      ...checks,
      { op: 'delete', key: `accessor/${await this.hmac(entry.secret_id_accessor)}` },
      { op: 'delete', key },
    ]);
  }

  /** The storage key and HMAC of the secret ID an accessor names, if it belongs to this role. */
  async secretByAccessor(roleName: string, accessor: string): Promise<{ key: string; secretHmac: string } | undefined> {
    if (accessor === '' || Buffer.byteLength(accessor) > MAX_INPUT_BYTES) return undefined;
    const found = await getJson<AccessorEntry>(this.storage, `accessor/${await this.hmac(accessor)}`);
    const roleHmac = await this.hmac(roleName.toLowerCase());
    // An accessor of another role's secret ID is not found through this role's path (its ACL is this role's).
    if (!found || found.role_hmac !== roleHmac) return undefined;
    return { key: `secret-id/${roleHmac}/${found.secret_id_hmac}`, secretHmac: found.secret_id_hmac };
  }

  /** The accessors of a role's secret IDs. */
  async accessors(roleName: string): Promise<string[]> {
    const roleHmac = await this.hmac(roleName.toLowerCase());
    const out: string[] = [];
    for (const secretHmac of await this.storage.list(`secret-id/${roleHmac}/`)) {
      const entry = await getJson<SecretIdEntry>(this.storage, `secret-id/${roleHmac}/${secretHmac}`);
      if (entry) out.push(entry.secret_id_accessor);
    }
    return out.sort();
  }

  /**
   * Removes expired secret IDs, secret IDs whose role is gone (a crash during the role's deletion), and accessors
   * whose secret ID is gone. Returns how many secret IDs were removed.
   */
  async tidy(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const roleDir of await this.storage.list('secret-id/')) {
      for (const secretHmac of await this.storage.list(`secret-id/${roleDir}`)) {
        const key = `secret-id/${roleDir}${secretHmac}`;
        await this.secretLocks.run(secretHmac, async () => {
          const entry = await getJson<SecretIdEntry>(this.storage, key);
          if (!entry) return;
          const role = await this.readRole(entry.role_name ?? '');
          if (isExpired(entry, now) || role?.uid !== entry.role_uid) {
            await this.deleteSecret(key, entry);
            removed++;
          }
        });
      }
    }
    for (const accessorHmac of await this.storage.list('accessor/')) {
      const found = await getJson<AccessorEntry>(this.storage, `accessor/${accessorHmac}`);
      if (!found) continue;
      await this.secretLocks.run(found.secret_id_hmac, async () => {
        const key = `secret-id/${found.role_hmac}/${found.secret_id_hmac}`;
        if (!(await this.storage.get(key))) await this.storage.delete(`accessor/${accessorHmac}`);
      });
    }
    return removed;
  }
}

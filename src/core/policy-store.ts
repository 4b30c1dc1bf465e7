import type { InvalidationHandler } from './invalidation.js';
import { badRequest } from './errors.js';
import { ACL, parsePolicy, type Policy } from './policy/index.js';
import {
  CLUSTER_AGENT_POLICY_NAME,
  CLUSTER_AGENT_POLICY_TEXT,
  DEFAULT_POLICY_TEXT,
  RESPONSE_WRAPPING_POLICY_NAME,
  RESPONSE_WRAPPING_POLICY_TEXT,
} from './policy/builtin.js';
import type { Storage } from './storage.js';
import { getJson, putJson } from './storage-view.js';

interface StoredPolicy {
  name: string;
  policy: string;
}

/**
 * ACL policies on their own barrier view, with parsed policies and combined ACLs cached. Any write or delete
 * drops the ACL cache, so the next request sees the change; reads never touch storage once a policy is cached.
 */
export class PolicyStore {
  private readonly parsed = new Map<string, Policy | null>();
  private readonly acls = new Map<string, ACL>();

  constructor(private readonly storage: Storage) {}

  clear(): void {
    this.parsed.clear();
    this.acls.clear();
  }

  /** Another node wrote or deleted a policy: combined ACLs may hold it, so all of them go. */
  readonly invalidation: InvalidationHandler = {
    drop: () => this.clear(),
    dropAll: () => this.clear(),
  };

  async read(name: string): Promise<StoredPolicy | undefined> {
    const key = name.toLowerCase();
    if (key === 'root') return { name: 'root', policy: '' };
    // Never from storage: a stored policy of that name (written before it was built in) cannot widen it.
    if (key === RESPONSE_WRAPPING_POLICY_NAME) return { name: key, policy: RESPONSE_WRAPPING_POLICY_TEXT };
    if (key === CLUSTER_AGENT_POLICY_NAME) return { name: key, policy: CLUSTER_AGENT_POLICY_TEXT };
    const stored = await getJson<StoredPolicy>(this.storage, key);
    if (stored) return stored;
    return key === 'default' ? { name: 'default', policy: DEFAULT_POLICY_TEXT } : undefined;
  }

  async write(name: string, text: string): Promise<void> {
    const key = name.toLowerCase();
    if (key === 'root' || key === RESPONSE_WRAPPING_POLICY_NAME || key === CLUSTER_AGENT_POLICY_NAME) {
      throw badRequest(`cannot update "${key}" policy`);
    }
    if (!/^[a-z0-9._\-@/]+$/i.test(key)) throw badRequest(`invalid policy name "${name}"`);
    parsePolicy(key, text); // refuses bad policies before anything is stored
    await putJson(this.storage, key, { name: key, policy: text });
    this.clear();
  }

  async delete(name: string): Promise<void> {
    const key = name.toLowerCase();
    if (
      key === 'root' ||
      key === 'default' ||
      key === RESPONSE_WRAPPING_POLICY_NAME ||
      key === CLUSTER_AGENT_POLICY_NAME
    ) {
      throw badRequest(`cannot delete "${key}" policy`);
    }
    await this.storage.delete(key);
    this.clear();
  }

  async list(): Promise<string[]> {
    const names = new Set(await this.storage.list(''));
    names.add('default');
    return [...names].sort().concat('root');
  }

  /** The combined ACL of a set of policy names; unknown names contribute nothing, as in Vault. */
  async acl(names: string[]): Promise<ACL> {
    const cacheKey = [...names].sort().join('\n');
    const cached = this.acls.get(cacheKey);
    if (cached) return cached;
    let acl: ACL;
    if (names.includes('root')) acl = ACL.root();
    else {
      const policies: Policy[] = [];
      for (const name of names) {
        const policy = await this.policy(name);
        if (policy) policies.push(policy);
      }
      acl = new ACL(policies);
    }
    this.acls.set(cacheKey, acl);
    return acl;
  }

  private async policy(name: string): Promise<Policy | undefined> {
    if (!this.parsed.has(name)) {
      const stored = await this.read(name);
      this.parsed.set(name, stored ? parsePolicy(stored.name, stored.policy) : null);
    }
    return this.parsed.get(name) ?? undefined;
  }
}

/**
 * Vault's two built-in policies. `root` has no text: it is a flag on the ACL (see ACL.root()) and can be neither
 * written nor deleted. `default` is ordinary, stored policy text that is seeded at startup, may be edited, but can't
 * be deleted (tokens get it unless created with no_default_policy).
 */
import { badRequest } from '../errors.js';
import { normalizePolicyName, parsePolicy, type Policy } from './policy.js';

export const ROOT_POLICY_NAME = 'root';
export const DEFAULT_POLICY_NAME = 'default';

/**
 * Vault's default policy, path for path, minus what Cofre doesn't implement: the templated
 * identity/entity/{id,name}/{{identity.entity.*}} rules (no policy templating) and the Enterprise
 * sys/control-group/request rule. Kept in HCL because `sys/policy/default` returns this text verbatim.
 */
export const DEFAULT_POLICY_TEXT = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
`;

/**
 * Vault's `response-wrapping` policy, the only policy of a wrapping token: it may read the wrapped response from
 * its own cubbyhole and unwrap it, nothing else. Built in and immutable, as in Vault; it is not listed and not
 * assignable to other tokens by name in any way that grants more than this.
 */
export const RESPONSE_WRAPPING_POLICY_NAME = 'response-wrapping';
export const RESPONSE_WRAPPING_POLICY_TEXT = `path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
`;

/**
 * Cofre's own: the only policy of a cluster agent's token (sys/cofre/agent/login). It reaches the agent paths and
 * nothing else; which cluster's bundles the token gets is decided by the token's cluster, not by the path. Built in,
 * immutable and not assignable, like response-wrapping: a token made with it by name would be no agent anyway.
 */
export const CLUSTER_AGENT_POLICY_NAME = 'cofre-cluster-agent';
export const CLUSTER_AGENT_POLICY_TEXT = `path "sys/cofre/agent/bundles" {
    capabilities = ["read"]
}

path "sys/cofre/agent/bundles/*" {
    capabilities = ["read"]
}

path "sys/cofre/agent/stream" {
    capabilities = ["read"]
}

path "sys/cofre/agent/report" {
    capabilities = ["create", "update"]
}
`;

/**
 * Vault's non-assignable policies: no token is created with `response-wrapping` but a wrapping token. Anyone
 * else holding one could pass for a wrapping token, and hand out a "wrapped" answer of their own making.
 */
export function assertAssignable(policies: readonly string[]): void {
  for (const policy of policies) {
    const name = normalizePolicyName(policy);
    if (name === RESPONSE_WRAPPING_POLICY_NAME || name === CLUSTER_AGENT_POLICY_NAME) {
      throw badRequest(`cannot assign policy "${name}"`);
    }
  }
}

/** The parsed default policy as shipped (what the policy store seeds when none is stored yet). */
export const defaultPolicy = (): Policy => parsePolicy(DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT);

/** The root policy's stand-in: building an ACL from it yields a root ACL. */
export const rootPolicy = (): Policy => ({ name: ROOT_POLICY_NAME, raw: '', paths: [] });

export const isRootPolicy = (name: string): boolean => normalizePolicyName(name) === ROOT_POLICY_NAME;

/** Throws Vault's error when `name` may not be created or updated (only root is immutable). */
export function assertPolicyWritable(name: string): void {
  const n = normalizePolicyName(name);
  if (n === ROOT_POLICY_NAME) throw badRequest(`cannot update "${n}" policy`);
}

/** Throws Vault's error when `name` may not be deleted: root never, default neither (it can only be edited). */
export function assertPolicyDeletable(name: string): void {
  const n = normalizePolicyName(name);
  if (n === ROOT_POLICY_NAME) throw badRequest(`cannot delete "${n}" policy`);
  if (n === DEFAULT_POLICY_NAME) throw badRequest('cannot delete default policy');
}

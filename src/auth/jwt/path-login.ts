import type { PathRecord } from '../../core/backend.js';
import { addressAllowed } from '../../core/cidr.js';
import { badRequest, permissionDenied } from '../../core/errors.js';
import { loginAuthFrom } from '../token-fields.js';
import { boundClaimsFailure, getClaim, mappedMetadata, normalizeList } from './claims.js';
import type { KeySets } from './keys.js';
import { readConfig } from './path-config.js';
import { readRole } from './path-role.js';
import { validateToken } from './validate.js';

/**
 * auth/jwt/login: a JWT signed by a key of the configured source, whose claims the role binds, logs in. The
 * order is Vault's: role, CIDR binding, signature and registered claims, audience rule, user claim, claim
 * mappings, groups, bound claims. Every refusal says what failed, never the token or a claim's value.
 */
export function loginPath(keySets: KeySets): PathRecord {
  return {
    pattern: 'login',
    summary: 'Logs in with a signed JWT and a role.',
    unauthenticated: true,
    fields: {
      role: { type: 'string', description: "The role to log in with; the config's default_role when empty." },
      jwt: { type: 'string', description: 'The signed JWT.', required: true },
    },
    operations: {
      update: async (req) => {
        const config = await readConfig(req.storage);
        if (!config) throw badRequest('the JWT auth method is not configured: write its config first');
        const roleName = ((req.data.role as string | undefined) || config.default_role).toLowerCase();
        if (!roleName) throw badRequest('missing role');
        const role = await readRole(req.storage, roleName);
        if (!role) throw badRequest(`role ${JSON.stringify(roleName)} could not be found`);
        const jwt = (req.data.jwt as string).trim();
        if (jwt === '') throw badRequest('missing token');
        if (!addressAllowed(role.token_bound_cidrs, req.remoteAddress)) throw permissionDenied();

        const claims = await validateToken(jwt, keySets.resolver(config), {
          issuer: config.bound_issuer,
          subject: role.bound_subject,
          audiences: role.bound_audiences,
          algorithms: config.jwt_supported_algs,
          clockSkewLeeway: role.clock_skew_leeway,
          expirationLeeway: role.expiration_leeway,
          notBeforeLeeway: role.not_before_leeway,
        });

        const user = role.user_claim_json_pointer
          ? getClaim(claims, role.user_claim)
          : Object.hasOwn(claims, role.user_claim)
            ? claims[role.user_claim]
            : undefined;
        if (user === undefined || user === null) {
          throw badRequest(`claim ${JSON.stringify(role.user_claim)} not found in token`);
        }
        if (typeof user !== 'string') {
          throw badRequest(`claim ${JSON.stringify(role.user_claim)} could not be converted to string`);
        }
        let metadata: Record<string, string>;
        try {
          metadata = mappedMetadata(role.claim_mappings, claims);
        } catch (err) {
          throw badRequest((err as Error).message);
        }
        if (role.groups_claim) {
          const groups = getClaim(claims, role.groups_claim);
          if (groups === undefined) {
            throw badRequest(`failed to fetch groups: ${JSON.stringify(role.groups_claim)} claim not found in token`);
          }
          const members = normalizeList(groups);
          if (!members || members.some((g) => typeof g !== 'string')) {
            throw badRequest(`${JSON.stringify(role.groups_claim)} claim could not be converted to string list`);
          }
        }
        const unbound = boundClaimsFailure(role.bound_claims, claims, role.bound_claims_type === 'glob');
        if (unbound) throw badRequest(`error validating claims: ${unbound}`);

        return {
          login: loginAuthFrom(role, {
            displayName: user,
            metadata: { ...metadata, role: roleName },
            internal: { role: roleName },
          }),
        };
      },
    },
  };
}

import type { PathRecord } from '../../core/backend.js';
import { badRequest, CofreError, permissionDenied } from '../../core/errors.js';
import { globMatches } from '../glob.js';
import { loginAuthFrom } from '../token-fields.js';
import { effectiveReviewer, readConfig } from './config.js';
import { audienceMismatch, quoteAudiences } from './audience.js';
import { readRole } from './role.js';
import { reviewToken, ReviewUnavailable } from './token-review.js';

/** "*" matches anything; other "*" are globs ("team-*"), as Vault allows in bound names and namespaces. */
export function boundMatches(patterns: string[], value: string): boolean {
  return patterns.some((p) => globMatches(p, value));
}

/**
 * auth/kubernetes/login: a pod proves who it is with its service-account JWT. The TokenReview API decides whether
 * the JWT is live; the role decides which service accounts and namespaces it binds and which policies they get.
 */
export function loginPath(): PathRecord {
  return {
    pattern: 'login',
    summary: 'Logs in with a Kubernetes service-account token and a role.',
    unauthenticated: true,
    fields: {
      role: { type: 'string', description: 'The role to log in with.', required: true },
      jwt: { type: 'string', description: 'The service-account token (a JWT) of the caller.', required: true },
    },
    operations: {
      update: async (req) => {
        const roleName = req.data.role as string;
        const jwt = req.data.jwt as string;
        if (jwt.split('.').length !== 3) throw badRequest('"jwt" is not a JWT');
        const config = await readConfig(req.storage);
        if (!config) throw badRequest('the Kubernetes auth method is not configured: write its config first');
        const role = await readRole(req.storage, roleName);
        if (!role) throw badRequest(`invalid role name "${roleName}"`);
        const reviewer = effectiveReviewer(config, jwt);
        let identity;
        try {
          identity = await reviewToken(
            { host: config.kubernetes_host, caCert: reviewer.caCert, reviewerJwt: reviewer.reviewerJwt },
            jwt,
            role.audience ? [role.audience] : [],
          );
        } catch (err) {
          if (!(err instanceof ReviewUnavailable)) throw err;
          // Without a reviewer JWT the caller's own token makes the call: its refusal is the caller's failure.
          if (reviewer.reviewerJwt === jwt && /answered 40[13]/.test(err.message)) throw permissionDenied();
          throw new CofreError(502, err.message);
        }
        if (!identity) {
          throw permissionDenied(
            audienceMismatch(jwt, roleName, role.audience) ??
              'permission denied: the service-account token is not valid (expired, revoked, or not issued by this cluster)',
          );
        }
        if (role.audience && !identity.audiences.includes(role.audience)) {
          throw permissionDenied(
            `permission denied: the token is valid for audience ${quoteAudiences(identity.audiences)}, ` +
              `but role "${roleName}" wants audience ${JSON.stringify(role.audience)}`,
          );
        }
        if (!boundMatches(role.bound_service_account_namespaces, identity.namespace)) {
          throw permissionDenied(`permission denied: namespace not authorized by role "${roleName}"`);
        }
        if (!boundMatches(role.bound_service_account_names, identity.serviceAccountName)) {
          throw permissionDenied(`permission denied: service account name not authorized by role "${roleName}"`);
        }
        return {
          login: loginAuthFrom(role, {
            displayName: `${identity.namespace}-${identity.serviceAccountName}`,
            metadata: {
              role: roleName,
              service_account_name: identity.serviceAccountName,
              service_account_namespace: identity.namespace,
              service_account_uid: identity.uid,
              service_account_secret_name: '',
            },
            internal: { role: roleName },
          }),
        };
      },
    },
  };
}

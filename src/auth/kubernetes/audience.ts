import { decodeJwt } from 'jose';

/** At most this many audiences, each cut to this length, go into a message: the claims are the caller's input. */
const MAX_SHOWN = 3;
const MAX_LENGTH = 100;

/**
 * The audiences a JWT claims, read without verifying it: only to say in an error which audience a refused token
 * was for. Nothing is decided on them (the TokenReview API decides), and the token itself never goes into a message.
 */
export function claimedAudiences(jwt: string): { audiences: string[]; issuer?: string } {
  try {
    const { aud, iss } = decodeJwt(jwt);
    const audiences = (Array.isArray(aud) ? aud : aud === undefined ? [] : [aud]).filter((a) => typeof a === 'string');
    return { audiences, ...(typeof iss === 'string' ? { issuer: iss } : {}) };
  } catch {
    return { audiences: [] };
  }
}

export function quoteAudiences(audiences: string[]): string {
  const shown = audiences
    .slice(0, MAX_SHOWN)
    .map((a) => JSON.stringify(a.length > MAX_LENGTH ? `${a.slice(0, MAX_LENGTH)}…` : a));
  const more = audiences.length > MAX_SHOWN ? ` and ${audiences.length - MAX_SHOWN} more` : '';
  return `${shown.join(', ')}${more}`;
}

/**
 * Why the API server refused a service-account token, when the audience explains it: the token was issued for one
 * audience and the role wants another, or the role names none (so only the API server's own audiences pass) and the
 * token was issued for a custom one. Undefined when the audiences do not explain the refusal.
 */
export function audienceMismatch(jwt: string, roleName: string, wanted: string): string | undefined {
  const { audiences: claimed, issuer } = claimedAudiences(jwt);
  if (claimed.length === 0) return undefined;
  if (wanted !== '') {
    if (claimed.includes(wanted)) return undefined;
    return (
      `permission denied: the service-account token was issued for audience ${quoteAudiences(claimed)}, ` +
      `but role "${roleName}" wants audience ${JSON.stringify(wanted)}`
    );
  }
  // The API server's audiences default to its issuer: a token for it was refused for another reason.
  if (issuer !== undefined && claimed.includes(issuer)) return undefined;
  return (
    `permission denied: the service-account token was issued for audience ${quoteAudiences(claimed)}, and role ` +
    `"${roleName}" names no audience, so only the Kubernetes API server's own audiences are accepted: set ` +
    `audience=${JSON.stringify(claimed[0]!.slice(0, MAX_LENGTH))} on the role, or log in with a token for the API server's audience`
  );
}

import { errors, jwtVerify, type JWSAlgorithm, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { badRequest, CofreError } from '../../core/errors.js';
import { KeySourceUnavailable } from './fetch.js';

/** The signing algorithms Vault (hashicorp/cap) accepts, and the default when jwt_supported_algs is empty. */
export const SUPPORTED_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
] as const;

/** Vault's defaults: 0 means the default, a negative value means no leeway. */
export const DEFAULT_CLOCK_SKEW_LEEWAY = 60;
export const DEFAULT_EXP_NBF_LEEWAY = 150;

export interface Expected {
  issuer: string;
  subject: string;
  audiences: string[];
  algorithms: string[];
  clockSkewLeeway: number;
  expirationLeeway: number;
  notBeforeLeeway: number;
}

const leeway = (value: number, fallback: number): number => (value < 0 ? 0 : value === 0 ? fallback : value);

/** A failed validation: a 400 as Vault's, saying what failed and never echoing the token or its claims. */
const invalid = (why: string): CofreError => badRequest(`error validating token: ${why}`);

function explain(err: unknown): CofreError {
  if (err instanceof CofreError) return err;
  if (err instanceof KeySourceUnavailable)
    return new CofreError(502, `could not get the verification keys: ${err.message}`);
  if (err instanceof errors.JWKSTimeout) {
    return new CofreError(502, 'could not get the verification keys: the key set did not answer in time');
  }
  // A key the key set serves that cannot be imported (malformed, or a private key): the issuer's fault.
  if (err instanceof errors.JWKSInvalid || (err instanceof Error && err.name === 'DataError')) {
    return new CofreError(502, `could not use a key of the key set: ${err.message}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return invalid('error verifying token signature: the signature does not match the key');
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return invalid('error verifying token signature: no key of the configured key set matches the token');
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return invalid('invalid algorithm (alg) header parameter: token signed with unexpected algorithm');
  }
  if (err instanceof errors.JWTExpired) return invalid('invalid expiration time (exp) claim: token is expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'iss':
        return invalid('invalid issuer (iss) claim');
      case 'sub':
        return invalid('invalid subject (sub) claim');
      case 'aud':
        return invalid('invalid audience (aud) claim: audience claim does not match any expected audience');
      case 'nbf':
        return invalid(
          err.reason === 'check_failed'
            ? 'invalid not before (nbf) claim: token not yet valid'
            : 'invalid not before (nbf) claim',
        );
      default:
        return invalid(`invalid ${JSON.stringify(err.claim)} claim: ${err.message}`);
    }
  }
  // Anything else jose refuses is a malformed token (not three parts, a header or payload that is not JSON, an
  // unknown "crit", a key of the wrong kind); its messages describe the structure, never the content.
  if (err instanceof errors.JOSEError) return invalid(`error parsing token: ${err.message}`);
  if (err instanceof TypeError) return invalid(`error parsing token: ${err.message}`);
  return err as CofreError;
}

/** jwtVerify, trying each key when the key set holds several that fit the token (no "kid", one kty). */
async function verifyAnyKey(jwt: string, keys: JWTVerifyGetKey, options: Parameters<typeof jwtVerify>[2]) {
  try {
    return await jwtVerify(jwt, keys, options);
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return await jwtVerify(jwt, key, options);
      } catch (inner) {
        if (inner instanceof errors.JWSSignatureVerificationFailed) continue;
        throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/**
 * Verifies a JWT as Vault's jwt method does (hashicorp/cap's Validator), with jose doing the cryptography: the
 * signature against the configured keys with an allowed algorithm (never "none", never an HMAC), then iss, sub
 * and aud as expected, then the times: at least one of iat, nbf and exp; a missing exp is iat or nbf plus the
 * expiration leeway, a missing nbf is iat or exp minus the not-before leeway; all three checked with the clock
 * skew leeway. Returns the claims; throws a CofreError saying what failed.
 */
export async function validateToken(jwt: string, keys: JWTVerifyGetKey, expected: Expected): Promise<JWTPayload> {
  const skew = leeway(expected.clockSkewLeeway, DEFAULT_CLOCK_SKEW_LEEWAY);
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await verifyAnyKey(jwt, keys, {
      algorithms: expected.algorithms.length > 0 ? (expected.algorithms as JWSAlgorithm[]) : [...SUPPORTED_ALGS],
      clockTolerance: skew,
      ...(expected.issuer ? { issuer: expected.issuer } : {}),
      ...(expected.subject ? { subject: expected.subject } : {}),
      ...(expected.audiences.length > 0 ? { audience: expected.audiences } : {}),
    }));
  } catch (err) {
    throw explain(err);
  }
  // jose has checked the types and, when present, nbf and exp; what follows is cap's rule for missing ones.
  const { iat, nbf, exp } = claims;
  if (iat === undefined && nbf === undefined && exp === undefined) {
    throw invalid('no issued at (iat), not before (nbf), or expiration time (exp) claims in token');
  }
  const now = Math.floor(Date.now() / 1000);
  const expiry = exp ?? Math.max(iat ?? 0, nbf ?? 0) + leeway(expected.expirationLeeway, DEFAULT_EXP_NBF_LEEWAY);
  const notBefore = nbf ?? iat ?? expiry - leeway(expected.notBeforeLeeway, DEFAULT_EXP_NBF_LEEWAY);
  if (now + skew < notBefore) throw invalid('invalid not before (nbf) claim: token not yet valid');
  if (now - skew > expiry) throw invalid('invalid expiration time (exp) claim: token is expired');
  if (iat !== undefined && now + skew < iat) throw invalid('invalid issued at (iat) claim: token issued in the future');
  // Vault: a role without bound audiences refuses a token that names any.
  if (expected.audiences.length === 0) {
    const aud = claims.aud;
    if ((typeof aud === 'string' && aud !== '') || (Array.isArray(aud) && aud.length > 0)) {
      throw invalid('audience claim found in JWT but no audiences bound to the role');
    }
  }
  return claims;
}

import { createPublicKey, X509Certificate } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JWK, type JWTVerifyGetKey } from 'jose';
import { FETCH_TIMEOUT_MS, getJson, KeySourceUnavailable } from './fetch.js';

/** Where a config says the verification keys are; exactly one of the three is set. */
export interface KeySourceConfig {
  jwks_url: string;
  jwks_ca_pem: string;
  jwt_validation_pubkeys: string[];
  oidc_discovery_url: string;
  oidc_discovery_ca_pem: string;
}

/**
 * After a fetch, a token whose key is not in the set fetches again only after this long: a key the issuer has
 * just added is found within a second (Vault refetches on every unknown key), while tokens with made-up key ids
 * cannot make Cofre fetch the set more than once a second.
 */
export const REFETCH_COOLDOWN_MS = 1_000;

/**
 * A PEM public key (SPKI "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY") or certificate as a JWK: RSA, EC (P-256, P-384,
 * P-521) or Ed25519. Throws an Error saying why not; private keys are refused rather than reduced to their
 * public half, so that no private key is ever stored.
 */
export function publicKeyJwk(pem: string): JWK {
  if (/PRIVATE KEY/.test(pem)) throw new Error('a private key was given: give only the public key');
  const source = pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  const bits = source.asymmetricKeyDetails?.modulusLength;
  if (source.asymmetricKeyType === 'rsa' && bits !== undefined && bits < 2048) {
    throw new Error(`an RSA key of ${bits} bits is too small to verify with (2048 or more)`);
  }
  const jwk = source.export({ format: 'jwk' }) as JWK;
  if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && !(jwk.kty === 'OKP' && jwk.crv === 'Ed25519')) {
    throw new Error(`unsupported key type ${source.asymmetricKeyType ?? 'unknown'} (RSA, EC or Ed25519 only)`);
  }
  return jwk;
}

function isJwks(json: Record<string, unknown>): boolean {
  const keys = json.keys;
  return Array.isArray(keys) && keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k));
}

/** Fetches a JSON Web Key Set; a document without a "keys" list of objects is a KeySourceUnavailable. */
export async function fetchJwks(url: string, ca: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const json = await getJson(url, { ...(ca ? { ca } : {}), ...(signal ? { signal } : {}) });
  if (!isJwks(json)) throw new KeySourceUnavailable(`${url} did not answer with a JSON Web Key Set (a "keys" list)`);
  return json;
}

/**
 * OpenID Connect discovery, only as far as the keys: `<url>/.well-known/openid-configuration` names the issuer
 * (which must be the discovery URL, as OpenID Connect Discovery 1.0 requires) and its jwks_uri.
 */
export async function discoverJwksUri(url: string, ca: string): Promise<string> {
  const base = url.replace(/\/+$/, '');
  const doc = await getJson(`${base}/.well-known/openid-configuration`, ca ? { ca } : {});
  if (typeof doc.issuer !== 'string' || doc.issuer.replace(/\/+$/, '') !== base) {
    throw new KeySourceUnavailable(`the discovery document of ${base} names another issuer`);
  }
  if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) {
    throw new KeySourceUnavailable(`the discovery document of ${base} has no http(s) jwks_uri`);
  }
  return doc.jwks_uri;
}

function remoteSet(url: string, ca: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), {
    cooldownDuration: REFETCH_COOLDOWN_MS,
    timeoutDuration: FETCH_TIMEOUT_MS,
    [customFetch]: async (href: string, init: { signal: AbortSignal }) => {
      const json = await fetchJwks(href, ca, init.signal);
      return new Response(JSON.stringify(json), { status: 200, headers: { 'content-type': 'application/json' } });
    },
  });
}

/** The key resolver jose's jwtVerify takes, for a config's key source. */
function buildResolver(config: KeySourceConfig): JWTVerifyGetKey {
  if (config.jwt_validation_pubkeys.length > 0) {
    // Static keys have no ids: as in Vault, each is tried whatever "kid" the token names.
    const local = createLocalJWKSet({ keys: config.jwt_validation_pubkeys.map(publicKeyJwk) });
    return (header) => local({ ...header, kid: undefined });
  }
  if (config.jwks_url) return remoteSet(config.jwks_url, config.jwks_ca_pem);
  // Discovery is done at the first login and again after a failed one, never on every login.
  let discovered: Promise<JWTVerifyGetKey> | undefined;
  const { oidc_discovery_url: url, oidc_discovery_ca_pem: ca } = config;
  return async (header, token) => {
    const pending = (discovered ??= discoverJwksUri(url, ca).then((uri) => remoteSet(uri, ca)));
    let resolve: JWTVerifyGetKey;
    try {
      resolve = await pending;
    } catch (err) {
      if (discovered === pending) discovered = undefined;
      throw err;
    }
    return resolve(header, token);
  };
}

/**
 * The key resolvers of one mount, kept across logins so that a remote key set is fetched once and refetched
 * only on a key it does not hold (or after jose's 10 minutes). A config naming another source gets a new one;
 * with many nodes each keeps its own, built from the config it reads.
 */
export class KeySets {
  private cached: { id: string; resolve: JWTVerifyGetKey } | undefined;

  resolver(config: KeySourceConfig): JWTVerifyGetKey {
    const id = JSON.stringify([
      config.jwks_url,
      config.jwks_ca_pem,
      config.jwt_validation_pubkeys,
      config.oidc_discovery_url,
      config.oidc_discovery_ca_pem,
    ]);
    if (this.cached?.id !== id) this.cached = { id, resolve: buildResolver(config) };
    return this.cached.resolve;
  }

  reset(): void {
    this.cached = undefined;
  }
}

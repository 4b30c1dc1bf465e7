import { X509Certificate } from 'node:crypto';
import type { Field, PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import type { Storage } from '../../core/storage.js';
import { getJson, putJson } from '../../core/storage-view.js';
import { KeySourceUnavailable } from './fetch.js';
import { discoverJwksUri, fetchJwks, publicKeyJwk, type KeySets, type KeySourceConfig } from './keys.js';
import { SUPPORTED_ALGS } from './validate.js';

export interface JwtConfig extends KeySourceConfig {
  bound_issuer: string;
  jwt_supported_algs: string[];
  default_role: string;
}

export const CONFIG_KEY = 'config';

/** Vault's OIDC login flow (browser redirect, client secret): not built; refused when set. */
const OIDC_FLOW_FIELDS = ['oidc_client_id', 'oidc_client_secret', 'oidc_response_mode', 'oidc_response_types'];

const fields: Record<string, Field> = {
  jwks_url: { type: 'string', description: 'URL of a JSON Web Key Set the tokens are verified with.' },
  jwks_ca_pem: {
    type: 'string',
    description: 'PEM CA certificate(s) trusted for jwks_url instead of the system roots.',
  },
  jwt_validation_pubkeys: {
    type: 'string-slice',
    description: 'PEM public keys (or certificates) the tokens are verified with: RSA, EC or Ed25519.',
  },
  oidc_discovery_url: {
    type: 'string',
    description: 'OIDC issuer URL; its /.well-known/openid-configuration names the jwks_uri the keys come from.',
  },
  oidc_discovery_ca_pem: { type: 'string', description: 'PEM CA certificate(s) trusted for oidc_discovery_url.' },
  bound_issuer: { type: 'string', description: 'The "iss" every token must carry; empty accepts any issuer.' },
  jwt_supported_algs: {
    type: 'string-list',
    description: `Signing algorithms accepted; default ${SUPPORTED_ALGS.join(', ')}.`,
  },
  default_role: { type: 'string', description: 'The role of a login that names none.' },
  oidc_client_id: { type: 'string', description: 'Not supported: the OIDC login flow is not built.' },
  oidc_client_secret: { type: 'string', description: 'Not supported: the OIDC login flow is not built.' },
  oidc_response_mode: { type: 'string', description: 'Not supported: the OIDC login flow is not built.' },
  oidc_response_types: { type: 'string-list', description: 'Not supported: the OIDC login flow is not built.' },
  jwks_pairs: { type: 'any', description: 'Not supported: one jwks_url only.' },
  provider_config: { type: 'map', description: 'Not supported: no provider-specific group fetching.' },
  namespace_in_state: { type: 'bool', description: 'Accepted for compatibility; Cofre has no namespaces.' },
  unsupported_critical_cert_extensions: { type: 'string-list', description: 'Not supported.' },
};

export async function readConfig(storage: Storage): Promise<JwtConfig | undefined> {
  return getJson<JwtConfig>(storage, CONFIG_KEY);
}

function checkCa(pem: string, field: string): void {
  if (pem === '') return;
  try {
    new X509Certificate(pem);
  } catch {
    throw badRequest(`"${field}" must be a PEM-encoded CA certificate`);
  }
}

/** A config from a write, checked as Vault's: exactly one key source, and that source answers. */
async function configFrom(d: Record<string, unknown>): Promise<JwtConfig> {
  for (const name of OIDC_FLOW_FIELDS) {
    const v = d[name];
    if (v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) {
      throw badRequest(
        `"${name}" is not supported yet: Cofre's jwt/oidc method validates JWTs only (no OIDC login flow)`,
      );
    }
  }
  if (Array.isArray(d.jwks_pairs) && d.jwks_pairs.length > 0) {
    throw badRequest('"jwks_pairs" is not supported yet: set one "jwks_url"');
  }
  if (d.provider_config && Object.keys(d.provider_config as object).length > 0) {
    throw badRequest('"provider_config" is not supported yet');
  }
  if ((d.unsupported_critical_cert_extensions as string[] | undefined)?.length) {
    throw badRequest('"unsupported_critical_cert_extensions" is not supported');
  }
  const config: JwtConfig = {
    jwks_url: ((d.jwks_url as string | undefined) ?? '').trim(),
    jwks_ca_pem: (d.jwks_ca_pem as string | undefined) ?? '',
    jwt_validation_pubkeys: ((d.jwt_validation_pubkeys as string[] | undefined) ?? []).filter((k) => k.trim() !== ''),
    oidc_discovery_url: ((d.oidc_discovery_url as string | undefined) ?? '').trim(),
    oidc_discovery_ca_pem: (d.oidc_discovery_ca_pem as string | undefined) ?? '',
    bound_issuer: (d.bound_issuer as string | undefined) ?? '',
    jwt_supported_algs: ((d.jwt_supported_algs as string[] | undefined) ?? []).map((a) => a.trim()).filter((a) => a),
    default_role: ((d.default_role as string | undefined) ?? '').toLowerCase(),
  };
  const sources = [
    config.jwks_url !== '',
    config.jwt_validation_pubkeys.length > 0,
    config.oidc_discovery_url !== '',
  ].filter(Boolean).length;
  if (sources !== 1) {
    throw badRequest("exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set");
  }
  const unsupported = config.jwt_supported_algs.filter((a) => !(SUPPORTED_ALGS as readonly string[]).includes(a));
  if (unsupported.length > 0) {
    throw badRequest(
      `invalid jwt_supported_algs: ${unsupported.map((a) => JSON.stringify(a)).join(', ')} not supported ` +
        `(one of ${SUPPORTED_ALGS.join(', ')})`,
    );
  }
  checkCa(config.jwks_ca_pem, 'jwks_ca_pem');
  checkCa(config.oidc_discovery_ca_pem, 'oidc_discovery_ca_pem');
  config.jwt_validation_pubkeys.forEach((pem, i) => {
    try {
      publicKeyJwk(pem);
    } catch (err) {
      throw badRequest(`error parsing public key ${i + 1} of jwt_validation_pubkeys: ${(err as Error).message}`);
    }
  });
  try {
    if (config.jwks_url) {
      if (!/^https?:\/\/[^/]/.test(config.jwks_url)) throw new KeySourceUnavailable('it is not an http(s) URL');
      await fetchJwks(config.jwks_url, config.jwks_ca_pem);
    }
    if (config.oidc_discovery_url) {
      if (!/^https?:\/\/[^/]/.test(config.oidc_discovery_url))
        throw new KeySourceUnavailable('it is not an http(s) URL');
      await fetchJwks(
        await discoverJwksUri(config.oidc_discovery_url, config.oidc_discovery_ca_pem),
        config.oidc_discovery_ca_pem,
      );
    }
  } catch (err) {
    if (!(err instanceof KeySourceUnavailable)) throw err;
    const which = config.jwks_url ? 'jwks URL' : 'oidc discovery URL';
    throw badRequest(`error checking ${which}: ${err.message}`);
  }
  return config;
}

export function configPath(keySets: KeySets): PathRecord {
  return {
    pattern: 'config',
    summary: 'Configures where the keys that verify JWTs come from, and the issuer they must name.',
    fields,
    operations: {
      read: async (req) => {
        const config = await readConfig(req.storage);
        if (!config) return undefined;
        return {
          data: {
            ...config,
            oidc_client_id: '',
            oidc_response_mode: '',
            oidc_response_types: [],
            jwks_pairs: [],
            provider_config: {},
            namespace_in_state: true,
            unsupported_critical_cert_extensions: [],
          },
        };
      },
      update: async (req) => {
        const config = await configFrom(req.data);
        await putJson(req.storage, CONFIG_KEY, config);
        keySets.reset();
        return undefined;
      },
    },
  };
}

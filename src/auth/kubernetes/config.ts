import { readFileSync } from 'node:fs';
import type { Field, PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import type { Storage } from '../../core/storage.js';
import { getJson, putJson } from '../../core/storage-view.js';

export interface KubeAuthConfig {
  kubernetes_host: string;
  kubernetes_ca_cert: string;
  token_reviewer_jwt: string;
  issuer: string;
  disable_iss_validation: boolean;
  disable_local_ca_jwt: boolean;
}

/** Where a pod's own service-account token and CA are mounted: used when Cofre runs in the cluster it serves. */
export const LOCAL_SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

const fields: Record<string, Field> = {
  kubernetes_host: { type: 'string', description: 'URL of the Kubernetes API server, e.g. https://10.0.0.1:443.' },
  kubernetes_ca_cert: { type: 'string', description: 'PEM CA certificate of the API server.' },
  token_reviewer_jwt: {
    type: 'string',
    description: 'JWT Cofre uses to call the TokenReview API; when empty, the JWT being reviewed is used.',
  },
  pem_keys: { type: 'string-list', description: 'Not supported: Cofre always asks the TokenReview API.' },
  issuer: { type: 'string', description: 'Accepted for compatibility; the TokenReview API validates the issuer.' },
  disable_iss_validation: { type: 'bool', description: 'Accepted for compatibility.' },
  disable_local_ca_jwt: {
    type: 'bool',
    description: "Do not fall back to the pod's own service-account token and CA when running in a cluster.",
  },
};

export async function readConfig(storage: Storage): Promise<KubeAuthConfig | undefined> {
  return getJson<KubeAuthConfig>(storage, 'config');
}

/** The config with the in-cluster fallbacks applied, as the login path needs it. */
export function effectiveReviewer(
  config: KubeAuthConfig,
  clientJwt: string,
): { caCert: string | undefined; reviewerJwt: string } {
  let caCert = config.kubernetes_ca_cert || undefined;
  let reviewerJwt = config.token_reviewer_jwt;
  if (!config.disable_local_ca_jwt) {
    const local = (name: string): string | undefined => {
      try {
        return readFileSync(`${LOCAL_SA_DIR}/${name}`, 'utf8');
      } catch {
        return undefined;
      }
    };
    caCert ??= local('ca.crt');
    reviewerJwt ||= local('token')?.trim() ?? '';
  }
  return { caCert, reviewerJwt: reviewerJwt || clientJwt };
}

export function configPath(): PathRecord {
  return {
    pattern: 'config',
    summary: 'Configures how Cofre reaches the Kubernetes API server to review service-account tokens.',
    fields,
    operations: {
      read: async (req) => {
        const config = await readConfig(req.storage);
        if (!config) return undefined;
        // The reviewer JWT is a credential: never echoed back, as in Vault.
        const { token_reviewer_jwt: _jwt, ...visible } = config;
        return { data: { ...visible, token_reviewer_jwt_set: config.token_reviewer_jwt !== '' } };
      },
      update: async (req) => {
        const d = req.data;
        const host = (d.kubernetes_host as string | undefined) ?? '';
        if (!/^https?:\/\/[^/]+/.test(host))
          throw badRequest('"kubernetes_host" must be a URL such as https://10.0.0.1:443');
        const ca = (d.kubernetes_ca_cert as string | undefined) ?? '';
        if (ca !== '' && !ca.includes('-----BEGIN CERTIFICATE-----')) {
          throw badRequest('"kubernetes_ca_cert" must be a PEM-encoded certificate');
        }
        if ((d.pem_keys as string[] | undefined)?.length) throw badRequest('"pem_keys" is not supported');
        const config: KubeAuthConfig = {
          kubernetes_host: host.replace(/\/+$/, ''),
          kubernetes_ca_cert: ca,
          token_reviewer_jwt: (d.token_reviewer_jwt as string | undefined) ?? '',
          issuer: (d.issuer as string | undefined) ?? '',
          disable_iss_validation: (d.disable_iss_validation as boolean | undefined) ?? true,
          disable_local_ca_jwt: (d.disable_local_ca_jwt as boolean | undefined) ?? false,
        };
        await putJson(req.storage, 'config', config);
        return undefined;
      },
    },
  };
}

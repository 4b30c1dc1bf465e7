import type { Field, PathRecord, Request } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import type { Storage } from '../../core/storage.js';
import { getJson, putJson } from '../../core/storage-view.js';

export interface KubeRole {
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  audience: string;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_period: number;
  token_num_uses: number;
  token_no_default_policy: boolean;
  alias_name_source: string;
}

const fields: Record<string, Field> = {
  name: { type: 'string', description: 'Role name.' },
  bound_service_account_names: { type: 'string-list', description: 'Service account names allowed; "*" or globs.' },
  bound_service_account_namespaces: { type: 'string-list', description: 'Namespaces allowed; "*" or globs.' },
  audience: { type: 'string', description: 'Audience the service-account token must carry.' },
  token_policies: { type: 'string-list', description: 'Policies of the tokens issued at login.' },
  policies: { type: 'string-list', description: 'Legacy alias of token_policies.' },
  token_ttl: { type: 'duration', description: 'TTL of the tokens issued at login.' },
  ttl: { type: 'duration', description: 'Legacy alias of token_ttl.' },
  token_max_ttl: { type: 'duration', description: 'Maximum TTL of the tokens issued at login.' },
  max_ttl: { type: 'duration', description: 'Legacy alias of token_max_ttl.' },
  token_period: { type: 'duration', description: 'Makes the issued tokens periodic.' },
  token_num_uses: { type: 'int', description: 'Use limit of the issued tokens; 0 is unlimited.' },
  token_no_default_policy: { type: 'bool', description: 'Do not attach the default policy.' },
  token_type: { type: 'string', description: 'Only "service" / "default".' },
  token_bound_cidrs: { type: 'string-list', description: 'Not supported yet.' },
  token_explicit_max_ttl: { type: 'duration', description: 'Accepted; mapped to token_max_ttl when that is unset.' },
  alias_name_source: { type: 'string', description: 'serviceaccount_uid (default) or serviceaccount_name.' },
};

const roleKey = (name: string): string => `role/${name.toLowerCase()}`;

export async function readRole(storage: Storage, name: string): Promise<KubeRole | undefined> {
  return getJson<KubeRole>(storage, roleKey(name));
}

function list(value: unknown): string[] {
  return ((value as string[] | undefined) ?? []).map((s) => s.trim()).filter((s) => s !== '');
}

function roleFrom(req: Request): KubeRole {
  const d = req.data;
  const names = list(d.bound_service_account_names);
  const namespaces = list(d.bound_service_account_namespaces);
  if (names.length === 0) throw badRequest('"bound_service_account_names" must be set (use "*" to allow any name)');
  if (namespaces.length === 0) {
    throw badRequest('"bound_service_account_namespaces" must be set (use "*" to allow any namespace)');
  }
  if (names.includes('*') && namespaces.includes('*')) {
    throw badRequest(
      'service account names and namespaces cannot both be "*": that binds every account of the cluster',
    );
  }
  if (d.token_type !== undefined && d.token_type !== 'service' && d.token_type !== 'default') {
    throw badRequest('only service tokens are supported');
  }
  if (((d.token_bound_cidrs as string[] | undefined) ?? []).length > 0)
    throw badRequest('"token_bound_cidrs" is not supported yet');
  const source = (d.alias_name_source as string | undefined) ?? 'serviceaccount_uid';
  if (!['serviceaccount_uid', 'serviceaccount_name'].includes(source)) {
    throw badRequest('"alias_name_source" must be serviceaccount_uid or serviceaccount_name');
  }
  return {
    bound_service_account_names: names,
    bound_service_account_namespaces: namespaces,
    audience: (d.audience as string | undefined) ?? '',
    token_policies: list(d.token_policies ?? d.policies).map((p) => p.toLowerCase()),
    token_ttl: (d.token_ttl ?? d.ttl ?? 0) as number,
    token_max_ttl: (d.token_max_ttl ?? d.max_ttl ?? d.token_explicit_max_ttl ?? 0) as number,
    token_period: (d.token_period ?? 0) as number,
    token_num_uses: (d.token_num_uses ?? 0) as number,
    token_no_default_policy: (d.token_no_default_policy ?? false) as boolean,
    alias_name_source: source,
  };
}

export function rolePaths(): PathRecord[] {
  const name = (req: Request): string => req.params.name ?? '';
  return [
    {
      pattern: 'role/?',
      summary: 'Lists the Kubernetes auth roles.',
      operations: {
        list: async (req) => {
          const keys = await req.storage.list('role/');
          if (keys.length === 0) throw notFound();
          return { data: { keys } };
        },
      },
    },
    {
      pattern: 'role/(?<name>[\\w.@-]+)',
      summary: 'Binds service accounts (by name and namespace) to policies.',
      fields,
      exists: async (req) => (await readRole(req.storage, name(req))) !== undefined,
      operations: {
        read: async (req) => {
          const role = await readRole(req.storage, name(req));
          if (!role) throw notFound();
          return { data: { ...role, policies: role.token_policies, ttl: role.token_ttl, max_ttl: role.token_max_ttl } };
        },
        create: async (req) => {
          await putJson(req.storage, roleKey(name(req)), roleFrom(req));
          return undefined;
        },
        update: async (req) => {
          const existing = (await readRole(req.storage, name(req)))!;
          // An update changes only the fields it names, as Vault's role update does.
          const merged = {
            ...existing,
            ...Object.fromEntries(Object.entries(req.data).filter(([, v]) => v !== undefined)),
          };
          await putJson(req.storage, roleKey(name(req)), roleFrom({ ...req, data: merged }));
          return undefined;
        },
        delete: async (req) => {
          await req.storage.delete(roleKey(name(req)));
          return undefined;
        },
      },
    },
  ];
}

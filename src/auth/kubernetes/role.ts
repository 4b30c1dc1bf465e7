import type { Field, PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import type { Storage } from '../../core/storage.js';
import { readStoredRole, rolePaths } from '../role-paths.js';
import { cleanList, tokenFields, tokenParamsFrom, type TokenParams } from '../token-fields.js';

export interface KubeRole extends TokenParams {
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  audience: string;
  alias_name_source: string;
}

const fields: Record<string, Field> = {
  name: { type: 'string', description: 'Role name.' },
  bound_service_account_names: { type: 'string-list', description: 'Service account names allowed; "*" or globs.' },
  bound_service_account_namespaces: { type: 'string-list', description: 'Namespaces allowed; "*" or globs.' },
  audience: { type: 'string', description: 'Audience the service-account token must carry.' },
  alias_name_source: { type: 'string', description: 'serviceaccount_uid (default) or serviceaccount_name.' },
  ...tokenFields,
};

export function readRole(storage: Storage, name: string): Promise<KubeRole | undefined> {
  return readStoredRole<KubeRole>(storage, name);
}

/** A role from a write; an update (current given) changes only the fields it names, as Vault's does. */
function roleFrom(data: Record<string, unknown>, current?: KubeRole): KubeRole {
  const names =
    data.bound_service_account_names !== undefined
      ? cleanList(data.bound_service_account_names)
      : (current?.bound_service_account_names ?? []);
  const namespaces =
    data.bound_service_account_namespaces !== undefined
      ? cleanList(data.bound_service_account_namespaces)
      : (current?.bound_service_account_namespaces ?? []);
  if (names.length === 0) throw badRequest('"bound_service_account_names" must be set (use "*" to allow any name)');
  if (namespaces.length === 0) {
    throw badRequest('"bound_service_account_namespaces" must be set (use "*" to allow any namespace)');
  }
  if (names.includes('*') && namespaces.includes('*')) {
    throw badRequest(
      'service account names and namespaces cannot both be "*": that binds every account of the cluster',
    );
  }
  const source = (data.alias_name_source as string | undefined) ?? current?.alias_name_source ?? 'serviceaccount_uid';
  if (!['serviceaccount_uid', 'serviceaccount_name'].includes(source)) {
    throw badRequest('"alias_name_source" must be serviceaccount_uid or serviceaccount_name');
  }
  return {
    bound_service_account_names: names,
    bound_service_account_namespaces: namespaces,
    audience: (data.audience as string | undefined) ?? current?.audience ?? '',
    alias_name_source: source,
    ...tokenParamsFrom(data, current),
  };
}

export function kubeRolePaths(): PathRecord[] {
  return rolePaths<KubeRole>({
    method: 'Kubernetes',
    binds: 'service accounts (by name and namespace)',
    fields,
    from: roleFrom,
  });
}

import type { Field, PathRecord } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import { tokenFields } from '../token-fields.js';
import { ROLE_IN_PATH, roleFields, roleFrom, roleNameOf } from './path-role.js';
import { checkRoleName, type AppRole, type AppRoleStore } from './store.js';

interface SubField {
  /** The field the body names (the first of these that is given) and a read shows. */
  names: string[];
  /** What a delete resets it to. */
  reset: unknown;
  read: (role: AppRole) => Record<string, unknown>;
}

/** Vault's per-field role paths (role/:role_name/secret-id-ttl, …): one property of the role each. */
const SUB_FIELDS: Record<string, SubField> = {
  policies: {
    names: ['token_policies', 'policies'],
    reset: [],
    read: (r) => ({ token_policies: r.token_policies, policies: r.token_policies }),
  },
  'bind-secret-id': { names: ['bind_secret_id'], reset: true, read: (r) => ({ bind_secret_id: r.bind_secret_id }) },
  'secret-id-bound-cidrs': {
    names: ['secret_id_bound_cidrs'],
    reset: [],
    read: (r) => ({ secret_id_bound_cidrs: r.secret_id_bound_cidrs }),
  },
  'bound-cidr-list': {
    names: ['bound_cidr_list'],
    reset: [],
    read: (r) => ({ bound_cidr_list: r.secret_id_bound_cidrs }),
  },
  'token-bound-cidrs': {
    names: ['token_bound_cidrs'],
    reset: [],
    read: (r) => ({ token_bound_cidrs: r.token_bound_cidrs }),
  },
  'secret-id-num-uses': {
    names: ['secret_id_num_uses'],
    reset: 0,
    read: (r) => ({ secret_id_num_uses: r.secret_id_num_uses }),
  },
  'secret-id-ttl': { names: ['secret_id_ttl'], reset: 0, read: (r) => ({ secret_id_ttl: r.secret_id_ttl }) },
  period: {
    names: ['token_period', 'period'],
    reset: 0,
    read: (r) => ({ token_period: r.token_period, period: r.token_period }),
  },
  'token-num-uses': { names: ['token_num_uses'], reset: 0, read: (r) => ({ token_num_uses: r.token_num_uses }) },
  'token-ttl': { names: ['token_ttl'], reset: 0, read: (r) => ({ token_ttl: r.token_ttl }) },
  'token-max-ttl': { names: ['token_max_ttl'], reset: 0, read: (r) => ({ token_max_ttl: r.token_max_ttl }) },
};

/** role/:role_name/<field> for each of Vault's per-field paths, and local-secret-ids (read only). */
export function roleFieldPaths(store: AppRoleStore): PathRecord[] {
  const allFields: Record<string, Field> = { ...roleFields, ...tokenFields };
  const paths: PathRecord[] = Object.entries(SUB_FIELDS).map(([segment, sub]) => {
    const fields: Record<string, Field> = { role_name: allFields.role_name! };
    for (const name of sub.names) fields[name] = allFields[name]!;
    const write = async (name: string, data: Record<string, unknown>): Promise<void> => {
      await store.changeRole(name, (current) => {
        if (!current) throw badRequest(`role "${name}" does not exist`);
        return roleFrom(name, data, current);
      });
    };
    return {
      pattern: `${ROLE_IN_PATH}/${segment}`,
      summary: `Reads, sets or resets the ${sub.names[0]} of an AppRole.`,
      fields,
      operations: {
        read: async (req) => {
          const role = await store.readRole(roleNameOf(req));
          if (!role) throw notFound();
          return { data: sub.read(role) };
        },
        update: async (req) => {
          const given = sub.names.find((n) => req.data[n] !== undefined);
          if (!given) throw badRequest(`missing ${sub.names[0]}`);
          await write(checkRoleName(roleNameOf(req)), { [given]: req.data[given] });
          return undefined;
        },
        delete: async (req) => {
          await write(checkRoleName(roleNameOf(req)), { [sub.names[0]!]: sub.reset });
          return undefined;
        },
      },
    };
  });
  paths.push({
    pattern: `${ROLE_IN_PATH}/local-secret-ids`,
    summary: 'Reads whether the secret IDs of an AppRole are local (always false in effect: no replication).',
    fields: { role_name: allFields.role_name! },
    operations: {
      read: async (req) => {
        const role = await store.readRole(roleNameOf(req));
        if (!role) throw notFound();
        return { data: { local_secret_ids: role.local_secret_ids } };
      },
    },
  });
  return paths;
}

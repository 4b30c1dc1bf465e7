import type { PathRecord, Request } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest, notFound } from '../errors.js';

/** Vault accepts the policy text plain or base64-encoded. */
function policyText(req: Request): string {
  const text = (req.data.policy ?? req.data.rules) as string | undefined;
  if (text === undefined || text.trim() === '') throw badRequest("'policy' parameter not supplied or empty");
  if (/^[A-Za-z0-9+/]+=*$/.test(text.trim()) && text.trim().length % 4 === 0) {
    const decoded = Buffer.from(text.trim(), 'base64').toString('utf8');
    if (decoded.includes('path')) return decoded;
  }
  return text;
}

const nameFields = {
  name: { type: 'string' as const, description: 'The policy name.' },
  policy: { type: 'string' as const, description: 'The policy document, HCL or JSON (plain or base64).' },
  rules: { type: 'string' as const, description: 'Legacy alias of policy.' },
};

export function policyPaths(core: Core): PathRecord[] {
  const name = (req: Request): string => (req.params.name ?? '').toLowerCase();
  const write = async (req: Request) => {
    await core.policies.write(name(req), policyText(req));
    return undefined;
  };
  const remove = async (req: Request) => {
    await core.policies.delete(name(req));
    return undefined;
  };
  return [
    {
      pattern: 'policies/acl/?',
      summary: 'Lists ACL policies.',
      operations: { list: async () => ({ data: { keys: await core.policies.list() } }) },
    },
    {
      pattern: 'policies/acl/(?<name>[^/]+)',
      summary: 'Reads, writes or deletes an ACL policy.',
      fields: nameFields,
      operations: {
        read: async (req) => {
          const policy = await core.policies.read(name(req));
          if (!policy) throw notFound();
          return { data: { name: policy.name, policy: policy.policy } };
        },
        update: write,
        delete: remove,
      },
    },
    {
      pattern: 'policy/?',
      summary: 'Lists policies (legacy path).',
      operations: {
        read: async () => {
          const keys = await core.policies.list();
          return { data: { keys, policies: keys }, mergeDataToTop: true };
        },
      },
    },
    {
      pattern: 'policy/(?<name>[^/]+)',
      summary: 'Reads, writes or deletes a policy (legacy path).',
      fields: nameFields,
      operations: {
        read: async (req) => {
          const policy = await core.policies.read(name(req));
          if (!policy) throw notFound();
          return { data: { name: policy.name, rules: policy.policy }, mergeDataToTop: true };
        },
        update: write,
        delete: remove,
      },
    },
  ];
}

import type { PathRecord, Request } from '../backend.js';
import { badRequest, notFound } from '../errors.js';
import { generatePassword, type PasswordPolicyStore } from '../password-policy.js';

/**
 * Vault decodes the policy when it is valid standard base64 and uses it as sent otherwise. A policy in the clear can
 * never pass for base64: it always holds quotes, spaces or braces.
 */
function policyText(req: Request): string {
  const text = req.data.policy as string | undefined;
  if (text === undefined || text.trim() === '') throw badRequest('missing policy');
  const compact = text.replace(/[\r\n]/g, ''); // Go's decoder skips line breaks, as `base64` wraps at 76 columns
  if (/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) {
    const decoded = Buffer.from(compact, 'base64');
    const utf8 = decoded.toString('utf8');
    if (Buffer.from(utf8, 'utf8').equals(decoded)) return utf8; // not text: leave it for the parser to refuse
  }
  return text;
}

const nameField = {
  name: { type: 'string' as const, description: 'The name of the password policy.' },
};

export function passwordPolicyPaths(store: PasswordPolicyStore): PathRecord[] {
  const name = (req: Request): string => req.params.name ?? '';
  const list = async () => {
    const keys = await store.list();
    if (keys.length === 0) throw notFound();
    return { data: { keys } };
  };
  return [
    {
      pattern: 'policies/password/?',
      summary: 'Lists the password policies.',
      operations: { list, read: list },
    },
    {
      pattern: 'policies/password/(?<name>[^/]+)',
      summary: 'Reads, writes or deletes a password policy.',
      fields: {
        ...nameField,
        policy: {
          type: 'string',
          description:
            'The password policy document: a length and rule "charset" blocks, in HCL or JSON, plain or base64-encoded.',
        },
      },
      operations: {
        read: async (req) => {
          const stored = await store.read(name(req));
          if (!stored) throw notFound('policy does not exist');
          return { data: { policy: stored.policy } };
        },
        update: async (req) => {
          await store.write(name(req), policyText(req));
          return undefined;
        },
        delete: async (req) => {
          await store.delete(name(req));
          return undefined;
        },
      },
    },
    {
      pattern: 'policies/password/(?<name>[^/]+)/generate',
      summary: 'Generates a password from a password policy.',
      fields: nameField,
      operations: {
        read: async (req) => {
          // Looked up here rather than through store.generate() so that an unknown name is a 404, as in Vault.
          const policy = await store.policy(name(req));
          if (!policy) throw notFound('policy does not exist');
          return { data: { password: generatePassword(policy) } };
        },
      },
    },
  ];
}

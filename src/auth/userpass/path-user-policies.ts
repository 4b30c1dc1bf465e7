import type { PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { tokenFields, tokenParamsFrom } from '../token-fields.js';
import { usernameOf } from './path-users.js';
import { changeUser, USERNAME } from './user.js';

/** users/:username/policies: replaces a user's token_policies, leaving the rest of the user as it is. */
export function userPoliciesPath(): PathRecord {
  return {
    pattern: `users/${USERNAME}/policies`,
    summary: "Sets the policies of a user's tokens.",
    fields: { token_policies: tokenFields.token_policies!, policies: tokenFields.policies! },
    operations: {
      update: async (req) => {
        await changeUser(req.storage, usernameOf(req), (user) => {
          if (!user) throw badRequest('username does not exist');
          // Only the policy fields are declared here, so the user's other parameters stay as they are.
          return { ...user, ...tokenParamsFrom(req.data, user) };
        });
        return undefined;
      },
    },
  };
}

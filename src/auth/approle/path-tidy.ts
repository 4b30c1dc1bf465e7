import type { PathRecord } from '../../core/backend.js';
import type { AppRoleStore } from './store.js';

/**
 * tidy/secret-id: removes expired secret IDs (and what a crash left behind). Vault starts it in the background
 * and answers 202; Cofre answers 202 too, but only once the tidy is done, so a caller sees its effect at once.
 */
export function tidyPath(store: AppRoleStore): PathRecord {
  return {
    pattern: 'tidy/secret-id',
    summary: 'Removes expired secret IDs.',
    operations: {
      update: async () => {
        const removed = await store.tidy();
        return { status: 202, warnings: [`Tidy operation finished: ${removed} secret IDs removed.`] };
      },
    },
  };
}

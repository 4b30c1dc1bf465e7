import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CofreAccess, Identity } from './cofre-client.js';
import { SyncError } from './errors.js';
import { issueCredential, readPath } from './sources.js';

// Refused before any call: the access is never used.
const access = {} as CofreAccess;
const id = {} as Identity;

describe('CofreSecret sources', () => {
  it("never copy the operator's own token or the server's internals into a target", async () => {
    // Before, `type: read` of auth/token/lookup-self wrote the token the operator reads with into the Secret.
    for (const [mount, path] of [
      ['auth/token', 'lookup-self'],
      ['auth', 'token/lookup-self'],
      ['/Auth', 'token/lookup-self'],
      ['sys', 'wrapping/lookup'],
      ['identity', 'entity/name/x'],
      ['cubbyhole', 'anything'],
    ]) {
      for (const read of [readPath, issueCredential]) {
        await assert.rejects(
          read(access, id, { mount: mount!, path: path!, type: 'read' }),
          (err: unknown) =>
            err instanceof SyncError &&
            err.reason === 'SourceUnavailable' &&
            /is not a source: paths under auth\/, sys\/, identity\/ and cubbyhole\/ are not copied/.test(err.message),
          `${mount}/${path}`,
        );
      }
    }
  });
});

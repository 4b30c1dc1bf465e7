import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CofreAccess, type Identity } from './cofre-client.js';
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
      // The HTTP client collapses dot segments before sending: each of these would reach auth/ or sys/.
      ['.', 'auth/token/lookup-self'],
      ['secret/..', 'sys/wrapping/lookup'],
      ['secret', '../auth/token/lookup-self'],
      ['secret', 'app/./../../sys/x'],
    ]) {
      for (const read of [readPath, issueCredential]) {
        await assert.rejects(
          read(access, id, { mount: mount!, path: path!, type: 'read' }),
          (err: unknown) =>
            err instanceof SyncError &&
            err.reason === 'SourceUnavailable' &&
            /is not a source: (paths under auth\/, sys\/, identity\/ and cubbyhole\/ are not copied|"\." and "\.\." segments are not allowed)/.test(
              err.message,
            ),
          `${mount}/${path}`,
        );
      }
      // KV sources too (refused before the access is used).
      await assert.rejects(CofreAccess.prototype.read.call(access, id, { mount: mount!, path: path! }), SyncError);
    }
  });
});

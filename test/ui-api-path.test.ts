import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodePath, UnsafePathError } from '../web/src/api-path.js';

// The UI's pages take names from the /ui/ path, decoded per segment: "%2F" becomes a "/" inside a name. What the UI
// sends must be the path the page names, or a crafted link turns a page's Delete into a delete of something else.
describe('the UI encodes the API paths it calls', () => {
  it('keeps slashes and encodes every other character a name may hold', () => {
    assert.equal(encodePath('secret/data/app/a b#c?d'), 'secret/data/app/a%20b%23c%3Fd');
    assert.equal(encodePath('secret/metadata/app/'), 'secret/metadata/app/');
    assert.equal(encodePath('sys/policies/acl/..x'), 'sys/policies/acl/..x');
  });

  it('refuses a "." or ".." segment, which the browser would resolve into another path', () => {
    // /ui/policies/..%2F..%2F..%2Fsys%2Fmounts%2Fsecret: the policy page's Delete was a DELETE of sys/mounts/secret.
    for (const path of ['sys/policies/acl/../../../sys/mounts/secret', 'secret/data/./x', 'a/..', '..']) {
      assert.throws(() => encodePath(path), UnsafePathError, path);
    }
    // What the browser does with the old encoding: the request leaves for sys/mounts/secret.
    const unsafe = 'sys/policies/acl/../../../sys/mounts/secret'.split('/').map(encodeURIComponent).join('/');
    assert.equal(new URL(`/v1/${unsafe}`, 'http://cofre:8200').pathname, '/v1/sys/mounts/secret');
  });
});

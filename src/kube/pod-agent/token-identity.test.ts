import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { podIdentity } from './token-identity.js';

// The claims of the pod's projected token decide which logins the sidecar accepts from state files (verifyToken is
// tested against a real Cofre and kube-apiserver in test/pod-agent-state.test.ts).
describe('the pod identity from its service-account token', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-token-identity-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const auth = (claims: object | string) => {
    const tokenPath = path.join(dir, 'token');
    const payload = typeof claims === 'string' ? claims : Buffer.from(JSON.stringify(claims)).toString('base64url');
    writeFileSync(tokenPath, `eyJhbGciOiJSUzI1NiJ9.${payload}.c2lnbmF0dXJl\n`);
    return { mount: 'kubernetes', role: 'app', tokenPath };
  };

  it('reads a bound token’s claims, uid included', async () => {
    const claims = {
      sub: 'system:serviceaccount:apps:web',
      'kubernetes.io': { namespace: 'apps', serviceaccount: { name: 'web', uid: 'u-1' }, pod: { name: 'p' } },
    };
    assert.deepEqual(await podIdentity(auth(claims)), {
      mount: 'kubernetes',
      role: 'app',
      namespace: 'apps',
      serviceAccount: 'web',
      serviceAccountUid: 'u-1',
    });
  });

  it('reads a legacy token’s flat claims', async () => {
    const claims = {
      sub: 'system:serviceaccount:apps:web',
      'kubernetes.io/serviceaccount/service-account.uid': 'u-2',
    };
    assert.equal((await podIdentity(auth(claims))).serviceAccountUid, 'u-2');
  });

  it('refuses a token that names no service account, or is no JWT, without printing it', async () => {
    await assert.rejects(podIdentity(auth({ sub: 'admin' })), (err: Error) => {
      assert.match(err.message, /names no service account/);
      assert.ok(!err.message.includes('eyJ'));
      return true;
    });
    await assert.rejects(podIdentity(auth('%%%')), /is not a JWT/);
  });
});

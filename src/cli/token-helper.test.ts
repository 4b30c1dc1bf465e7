import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eraseToken, readStoredToken, storeToken, tokenHelperPath } from './token-helper.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-token-helper-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('token helper', () => {
  it('defaults to ~/.vault-token and honours COFRE_TOKEN_FILE', () => {
    assert.equal(tokenHelperPath({ HOME: '/home/u' }), join('/home/u', '.vault-token'));
    assert.equal(tokenHelperPath({ HOME: '/home/u', COFRE_TOKEN_FILE: '/x/tok' }), '/x/tok');
  });

  it('stores the token with mode 0600 and reads it back trimmed', () => {
    const env = { COFRE_TOKEN_FILE: join(dir, 'tok') };
    assert.equal(readStoredToken(env), undefined);
    storeToken('s.abc', env);
    assert.equal(statSync(env.COFRE_TOKEN_FILE).mode & 0o777, 0o600);
    assert.equal(readStoredToken(env), 's.abc');
    writeFileSync(env.COFRE_TOKEN_FILE, '  s.def\n');
    assert.equal(readStoredToken(env), 's.def');
    eraseToken(env);
    assert.equal(readStoredToken(env), undefined);
  });

  it('tightens the mode of an existing file', () => {
    const env = { COFRE_TOKEN_FILE: join(dir, 'loose') };
    writeFileSync(env.COFRE_TOKEN_FILE, 'old', { mode: 0o644 });
    storeToken('new', env);
    assert.equal(statSync(env.COFRE_TOKEN_FILE).mode & 0o777, 0o600);
    assert.equal(readStoredToken(env), 'new');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportPKCS8, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { CofreError } from '../../core/errors.js';
import { KeySets, publicKeyJwk } from './keys.js';
import { validateToken, type Expected } from './validate.js';

/** validateToken against static keys: cap's time rules, leeways and key types, without a server. */
describe('jwt validateToken', () => {
  const now = (): number => Math.floor(Date.now() / 1000);
  const expected = (over: Partial<Expected> = {}): Expected => ({
    issuer: '',
    subject: '',
    audiences: [],
    algorithms: [],
    clockSkewLeeway: 0,
    expirationLeeway: 0,
    notBeforeLeeway: 0,
    ...over,
  });

  const setup = async (alg: 'RS256' | 'ES384' | 'EdDSA' | 'PS256') => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const spki = await exportSPKI(publicKey);
    const keys = new KeySets().resolver({
      jwks_url: '',
      jwks_ca_pem: '',
      jwt_validation_pubkeys: [spki],
      oidc_discovery_url: '',
      oidc_discovery_ca_pem: '',
    });
    const sign = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg }).sign(privateKey);
    return { keys, sign };
  };
  const refusedWith = async (promise: Promise<unknown>, why: RegExp): Promise<void> => {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof CofreError, String(err));
      assert.equal(err.status, 400);
      assert.match(err.message, why);
      return true;
    });
  };

  it('verifies RSA, PSS, EC and Ed25519 keys given as PEM', async () => {
    for (const alg of ['RS256', 'PS256', 'ES384', 'EdDSA'] as const) {
      const { keys, sign } = await setup(alg);
      const claims = await validateToken(await sign({ sub: 's', exp: now() + 60 }), keys, expected());
      assert.equal(claims.sub, 's', alg);
    }
  });

  it('several static keys of one type: each is tried, whatever kid the token names', async () => {
    const pairs = await Promise.all([1, 2, 3].map(() => generateKeyPair('RS256', { extractable: true })));
    const keys = new KeySets().resolver({
      jwks_url: '',
      jwks_ca_pem: '',
      jwt_validation_pubkeys: await Promise.all(pairs.slice(0, 2).map((p) => exportSPKI(p.publicKey))),
      oidc_discovery_url: '',
      oidc_discovery_ca_pem: '',
    });
    const sign = (i: number, kid?: string) =>
      new SignJWT({ sub: `by-${i}`, exp: now() + 60 })
        .setProtectedHeader({ alg: 'RS256', ...(kid ? { kid } : {}) })
        .sign(pairs[i]!.privateKey);
    assert.equal((await validateToken(await sign(1), keys, expected())).sub, 'by-1');
    assert.equal((await validateToken(await sign(0, 'whatever'), keys, expected())).sub, 'by-0');
    await refusedWith(validateToken(await sign(2), keys, expected()), /error verifying token signature/);
  });

  it('a missing exp is iat (or nbf) plus the expiration leeway: 150 s by default, none at -1', async () => {
    const { keys, sign } = await setup('RS256');
    const old = await sign({ iat: now() - 200 });
    // 200 s ago + 150 s leeway + 60 s skew: still valid; with the skew off (-1) it is not.
    await validateToken(old, keys, expected());
    await refusedWith(validateToken(old, keys, expected({ clockSkewLeeway: -1 })), /token is expired/);
    await refusedWith(validateToken(old, keys, expected({ expirationLeeway: -1 })), /token is expired/);
    await validateToken(old, keys, expected({ expirationLeeway: 300, clockSkewLeeway: -1 }));
    await refusedWith(
      validateToken(await sign({ nbf: now() - 400, iat: now() - 500 }), keys, expected()),
      /token is expired/,
    );
  });

  it('a missing nbf is iat, or exp minus the not-before leeway', async () => {
    const { keys, sign } = await setup('RS256');
    // exp in 10 minutes and nothing else: valid from exp - 150 s, which is in the future.
    const early = await sign({ exp: now() + 600 });
    await refusedWith(validateToken(early, keys, expected()), /not yet valid/);
    await validateToken(early, keys, expected({ notBeforeLeeway: 900 }));
    await refusedWith(validateToken(await sign({ iat: now() + 120 }), keys, expected()), /not yet valid/);
    await validateToken(await sign({ iat: now() + 30 }), keys, expected());
  });

  it('the clock skew leeway applies to exp and nbf alike: 60 s by default', async () => {
    const { keys, sign } = await setup('ES384');
    const justExpired = await sign({ exp: now() - 30 });
    await validateToken(justExpired, keys, expected());
    await refusedWith(validateToken(justExpired, keys, expected({ clockSkewLeeway: -1 })), /token is expired/);
    await refusedWith(validateToken(justExpired, keys, expected({ clockSkewLeeway: 10 })), /token is expired/);
    const soon = await sign({ nbf: now() + 30, exp: now() + 300 });
    await validateToken(soon, keys, expected());
    await refusedWith(validateToken(soon, keys, expected({ clockSkewLeeway: -1 })), /not yet valid/);
  });

  it('only the configured algorithms, and never an HMAC keyed with the public key', async () => {
    const { keys, sign } = await setup('RS256');
    const token = await sign({ exp: now() + 60 });
    await refusedWith(validateToken(token, keys, expected({ algorithms: ['ES256'] })), /unexpected algorithm/);
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const hmac = await new SignJWT({ exp: now() + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(await exportSPKI(publicKey)));
    await refusedWith(validateToken(hmac, keys, expected({ algorithms: ['HS256'] })), /alg|parsing/);
  });

  it('publicKeyJwk takes public keys, never a private key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    assert.equal(publicKeyJwk(await exportSPKI(publicKey)).kty, 'EC');
    const pkcs8 = await exportPKCS8(privateKey);
    assert.throws(() => publicKeyJwk(pkcs8), /private key/);
    const { generateKeyPairSync } = await import('node:crypto');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    assert.throws(() => publicKeyJwk(small.toString()), /1024 bits is too small/);
    assert.throws(() => publicKeyJwk('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'));
  });
});

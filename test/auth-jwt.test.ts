import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importPKCS8,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import nodeVault from 'node-vault';
import { selfSignedCert, startServer, until, type InProcessServer } from './support.js';

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
  spki: string;
}

async function signingKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg },
    spki: await exportSPKI(publicKey),
  };
}

/** A small identity provider: a JWKS at /jwks and an OIDC discovery document, over http on 127.0.0.1. */
class TestIdp {
  served: JWK[] = [];
  jwksFetches = 0;
  url = '';
  private server: Server | undefined;

  async start(tls?: { key: string; cert: string }): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/jwks') {
        this.jwksFetches++;
        res.end(JSON.stringify({ keys: this.served }));
      } else if (req.url === '/.well-known/openid-configuration') {
        res.end(JSON.stringify({ issuer: this.url, jwks_uri: `${this.url}/jwks` }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    };
    this.server = tls
      ? createHttpsServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, handler)
      : createHttpServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
  }
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);
const ISSUER = 'https://idp.cofre.test';

describe('JWT auth method (issue 17)', () => {
  let srv: InProcessServer;
  const idp = new TestIdp();
  let rsa: SigningKey;
  let ec: SigningKey;
  let stranger: SigningKey;

  const claims = (extra: JWTPayload = {}): JWTPayload => ({
    iss: ISSUER,
    sub: 'user-1',
    aud: 'cofre',
    iat: now(),
    exp: now() + 300,
    email: 'user-1@example.test',
    repository: 'org/app',
    ref: 'refs/heads/release-1.2',
    groups: ['dev', 'ops'],
    ...extra,
  });
  const sign = (payload: JWTPayload, key: SigningKey = rsa, header: Record<string, unknown> = {}): Promise<string> =>
    new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
  const login = (jwt: string, role = 'app', mount = 'jwt') =>
    srv.api.call('POST', `auth/${mount}/login`, { token: '', body: { role, jwt } });
  const ok = (res: { status: number; text: string }) => assert.ok(res.status < 300, res.text);
  /** A refusal: a 400 saying why, without the token. */
  const refused = async (jwt: string, why: RegExp, role = 'app', mount = 'jwt'): Promise<void> => {
    const res = await login(jwt, role, mount);
    assert.equal(res.status, 400, res.text);
    assert.match(res.body.errors[0], why);
    assert.ok(!res.text.includes(jwt), 'the error echoes the token');
  };

  before(async () => {
    [rsa, ec, stranger] = await Promise.all([
      signingKey('rsa-1', 'RS256'),
      signingKey('ec-1', 'ES256'),
      signingKey('rsa-1', 'RS256'), // the same kid as a served key, but not served
    ]);
    idp.served = [rsa.publicJwk, ec.publicJwk];
    await idp.start();
    srv = await startServer();
    ok(await srv.api.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } }));
    ok(await srv.api.call('POST', 'auth/jwt/config', { body: { jwks_url: `${idp.url}/jwks`, bound_issuer: ISSUER } }));
    ok(
      await srv.api.call('PUT', 'sys/policies/acl/app-read', {
        body: { policy: 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n' },
      }),
    );
    ok(
      await srv.api.call('POST', 'auth/jwt/role/app', {
        body: {
          role_type: 'jwt',
          bound_audiences: ['cofre'],
          user_claim: 'sub',
          claim_mappings: { email: 'email', '/groups/0': 'first_group' },
          groups_claim: 'groups',
          token_policies: ['app-read'],
          token_ttl: '1h',
        },
      }),
    );
    ok(await srv.api.call('POST', 'secret/data/app/db', { body: { data: { password: 'from-cofre' } } }));
  });

  after(async () => {
    await srv?.stop();
    await idp.stop();
  });

  it('RS256 and ES256 tokens from the served JWKS log in over HTTP with the role policies and mapped metadata', async () => {
    for (const key of [rsa, ec]) {
      const res = await login(await sign(claims(), key));
      assert.equal(res.status, 200, res.text);
      const auth = res.body.auth;
      assert.deepEqual(auth.policies, ['app-read', 'default']);
      assert.deepEqual(auth.metadata, { role: 'app', email: 'user-1@example.test', first_group: 'dev' });
      assert.ok(auth.lease_duration > 3500 && auth.lease_duration <= 3600, String(auth.lease_duration));
      const read = await srv.api.call('GET', 'secret/data/app/db', { token: auth.client_token });
      assert.equal(read.body.data.data.password, 'from-cofre');
      assert.equal((await srv.api.call('GET', 'secret/data/other', { token: auth.client_token })).status, 403);
      const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: auth.client_token });
      assert.equal(self.body.data.display_name, 'jwt-user-1');
      assert.equal(self.body.data.path, 'auth/jwt/login');
    }
  });

  it('node-vault logs in with its jwtLogin and the token reads what the role allows', async () => {
    const vault = nodeVault({ apiVersion: 'v1', endpoint: srv.url });
    const res = await vault.jwtLogin({ role: 'app', jwt: await sign(claims({ email: 'nv@example.test' })) });
    assert.deepEqual(res.auth.policies, ['app-read', 'default']);
    assert.equal(res.auth.metadata.email, 'nv@example.test');
    assert.equal(vault.token, res.auth.client_token);
    assert.equal((await vault.read('secret/data/app/db')).data.data.password, 'from-cofre');
    const generic = nodeVault({ apiVersion: 'v1', endpoint: srv.url });
    const written = await generic.write('auth/jwt/login', { role: 'app', jwt: await sign(claims()) });
    assert.deepEqual(written.auth.policies, ['app-read', 'default']);
  });

  it('refuses a wrong issuer, a wrong audience, an expired or not yet valid token and a bad signature', async () => {
    await refused(await sign(claims({ iss: 'https://evil.test' })), /invalid issuer \(iss\) claim/);
    const { iss: _iss, ...noIssuer } = claims();
    await refused(await sign(noIssuer), /invalid issuer \(iss\) claim/);
    await refused(await sign(claims({ aud: 'someone-else' })), /invalid audience \(aud\) claim/);
    await refused(await sign(claims({ aud: ['a', 'b'] })), /invalid audience \(aud\) claim/);
    await refused(await sign(claims({ iat: now() - 1200, exp: now() - 600 })), /token is expired/);
    // Within the default clock skew leeway of 60 s an expired token still passes, as in Vault.
    assert.equal((await login(await sign(claims({ iat: now() - 100, exp: now() - 30 })))).status, 200);
    await refused(await sign(claims({ nbf: now() + 600, iat: undefined })), /token not yet valid/);
    await refused(await sign(claims({ iat: now() + 600 })), /not yet valid|issued in the future/);
    // Signed by a key that is not served, under the kid of one that is.
    await refused(await sign(claims(), stranger), /error verifying token signature/);
    // A valid token with one byte of its signature changed.
    const good = await sign(claims());
    const last = good.at(-2) === 'A' ? 'B' : 'A';
    await refused(`${good.slice(0, -2)}${last}${good.at(-1)}`, /error verifying token signature/);
    // No iat, nbf or exp at all: refused, as cap does.
    const { iat: _i, exp: _e, ...timeless } = claims();
    await refused(await sign(timeless), /no issued at \(iat\), not before \(nbf\), or expiration time \(exp\)/);
  });

  it('an unsigned token (alg none) and an HS256 token keyed with the public key are refused', async () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    await refused(unsigned, /alg|signature|parsing/);
    await refused(`${b64({ alg: 'none', kid: 'rsa-1' })}.${b64(claims())}.c2lnbmF0dXJl`, /alg|signature|parsing/);
    for (const secret of [rsa.spki, JSON.stringify(rsa.publicJwk)]) {
      const confused = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
        .sign(new TextEncoder().encode(secret));
      await refused(confused, /invalid algorithm \(alg\) header parameter/);
    }
    // An algorithm the config does not allow, though the key is served.
    ok(await srv.api.call('POST', 'sys/auth/only-es', { body: { type: 'jwt' } }));
    ok(
      await srv.api.call('POST', 'auth/only-es/config', {
        body: { jwks_url: `${idp.url}/jwks`, jwt_supported_algs: ['ES256'] },
      }),
    );
    ok(await srv.api.call('POST', 'auth/only-es/role/app', { body: { bound_audiences: 'cofre', user_claim: 'sub' } }));
    assert.equal((await login(await sign(claims(), ec), 'app', 'only-es')).status, 200);
    await refused(await sign(claims(), rsa), /unexpected algorithm/, 'app', 'only-es');
    const algs = await srv.api.call('POST', 'auth/only-es/config', {
      body: { jwks_url: `${idp.url}/jwks`, jwt_supported_algs: ['HS256'] },
    });
    assert.equal(algs.status, 400);
    assert.match(algs.body.errors[0], /jwt_supported_algs/);
    const none = await srv.api.call('POST', 'auth/only-es/config', {
      body: { jwks_url: `${idp.url}/jwks`, jwt_supported_algs: ['none'] },
    });
    assert.equal(none.status, 400);
  });

  it('bound_claims (exact and glob, lists) and bound_subject decide who may log in', async () => {
    ok(
      await srv.api.call('POST', 'auth/jwt/role/exact', {
        body: {
          role_type: 'jwt',
          user_claim: 'sub',
          bound_audiences: 'cofre',
          bound_claims: { repository: 'org/app', groups: ['admins', 'ops'] },
          token_policies: 'app-read',
        },
      }),
    );
    assert.equal((await login(await sign(claims()), 'exact')).status, 200);
    await refused(
      await sign(claims({ repository: 'org/other' })),
      /claim "repository" does not match any associated bound claim values/,
      'exact',
    );
    await refused(await sign(claims({ groups: ['dev'] })), /claim "groups" does not match/, 'exact');
    await refused(await sign(claims({ repository: undefined })), /claim "repository" is missing/, 'exact');
    // Exact matching takes "*" literally.
    ok(await srv.api.call('POST', 'auth/jwt/role/exact', { body: { bound_claims: { repository: 'org/*' } } }));
    await refused(await sign(claims()), /claim "repository" does not match/, 'exact');

    ok(
      await srv.api.call('POST', 'auth/jwt/role/glob', {
        body: {
          role_type: 'jwt',
          user_claim: 'sub',
          bound_audiences: 'cofre',
          bound_claims_type: 'glob',
          bound_claims: { ref: ['refs/heads/release-*', 'refs/tags/v*'], repository: 'org/*' },
        },
      }),
    );
    assert.equal((await login(await sign(claims()), 'glob')).status, 200);
    assert.equal((await login(await sign(claims({ ref: 'refs/tags/v2' })), 'glob')).status, 200);
    await refused(await sign(claims({ ref: 'refs/heads/main' })), /claim "ref" does not match/, 'glob');
    await refused(await sign(claims({ repository: 'other/app' })), /claim "repository" does not match/, 'glob');
    const notGlob = await srv.api.call('POST', 'auth/jwt/role/glob', {
      body: { bound_claims: { ref: 5 } },
    });
    assert.equal(notGlob.status, 400);

    ok(
      await srv.api.call('POST', 'auth/jwt/role/subject', {
        body: { role_type: 'jwt', user_claim: 'email', bound_subject: 'user-1', bound_audiences: 'cofre' },
      }),
    );
    const bySubject = await login(await sign(claims()), 'subject');
    assert.equal(bySubject.status, 200, bySubject.text);
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: bySubject.body.auth.client_token });
    assert.equal(self.body.data.display_name, 'jwt-user-1@example.test');
    await refused(await sign(claims({ sub: 'user-2' })), /invalid subject \(sub\) claim/, 'subject');
    await refused(await sign(claims({ email: undefined })), /claim "email" not found in token/, 'subject');
    await refused(await sign(claims({ email: 7 })), /claim "email" could not be converted to string/, 'subject');
  });

  it('a role without bound audiences refuses a token that names one (Vault rule)', async () => {
    ok(
      await srv.api.call('POST', 'auth/jwt/role/no-aud', {
        body: { role_type: 'jwt', user_claim: 'sub', bound_subject: 'user-1' },
      }),
    );
    await refused(await sign(claims()), /audience claim found in JWT but no audiences bound to the role/, 'no-aud');
    assert.equal((await login(await sign(claims({ aud: undefined })), 'no-aud')).status, 200);
    assert.equal((await login(await sign(claims({ aud: [] })), 'no-aud')).status, 200);
  });

  it('static PEM keys (jwt_validation_pubkeys) on a method mounted as "oidc"', async () => {
    ok(await srv.api.call('POST', 'sys/auth/oidc', { body: { type: 'oidc' } }));
    await refused(await sign(claims()), /not configured: write its config first/, 'pem', 'oidc');
    ok(
      await srv.api.call('POST', 'auth/oidc/config', {
        body: { jwt_validation_pubkeys: [rsa.spki, ec.spki], bound_issuer: ISSUER, default_role: 'pem' },
      }),
    );
    ok(
      await srv.api.call('POST', 'auth/oidc/role/pem', {
        body: { role_type: 'jwt', user_claim: 'sub', bound_audiences: ['cofre'], token_policies: ['app-read'] },
      }),
    );
    // Static keys have no kid: each is tried; the token's kid does not matter.
    for (const key of [rsa, ec]) {
      const res = await srv.api.call('POST', 'auth/oidc/login', {
        token: '',
        body: { jwt: await sign(claims(), key) },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.auth.policies, ['app-read', 'default']);
    }
    const noKid = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
    assert.equal((await login(noKid, 'pem', 'oidc')).status, 200);
    await refused(await sign(claims(), stranger), /error verifying token signature/, 'pem', 'oidc');
    const confused = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(rsa.spki));
    await refused(confused, /invalid algorithm/, 'pem', 'oidc');
    const config = await srv.api.call('GET', 'auth/oidc/config');
    assert.deepEqual(config.body.data.jwt_validation_pubkeys, [rsa.spki, ec.spki]);
    assert.equal(config.body.data.default_role, 'pem');
    const privateKey = await srv.api.call('POST', 'auth/oidc/config', {
      body: {
        jwt_validation_pubkeys: ['-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----'],
      },
    });
    assert.equal(privateKey.status, 400);
    const garbage = await srv.api.call('POST', 'auth/oidc/config', { body: { jwt_validation_pubkeys: ['not a key'] } });
    assert.equal(garbage.status, 400);
    assert.match(garbage.body.errors[0], /error parsing public key 1/);
  });

  it('OIDC discovery names the JWKS; a JWKS over https is trusted through jwks_ca_pem only', async () => {
    ok(await srv.api.call('POST', 'sys/auth/disco', { body: { type: 'jwt' } }));
    ok(
      await srv.api.call('POST', 'auth/disco/config', { body: { oidc_discovery_url: idp.url, bound_issuer: ISSUER } }),
    );
    ok(await srv.api.call('POST', 'auth/disco/role/app', { body: { bound_audiences: 'cofre', user_claim: 'sub' } }));
    assert.equal((await login(await sign(claims()), 'app', 'disco')).status, 200);
    const elsewhere = await srv.api.call('POST', 'auth/disco/config', {
      body: { oidc_discovery_url: `${idp.url}/nothing-here` },
    });
    assert.equal(elsewhere.status, 400);
    assert.match(elsewhere.body.errors[0], /error checking oidc discovery URL/);

    const tlsIdp = new TestIdp();
    const dir = srv.dir;
    const cert = selfSignedCert(dir);
    tlsIdp.served = [ec.publicJwk];
    await tlsIdp.start(cert);
    try {
      ok(await srv.api.call('POST', 'sys/auth/tls', { body: { type: 'jwt' } }));
      const untrusted = await srv.api.call('POST', 'auth/tls/config', { body: { jwks_url: `${tlsIdp.url}/jwks` } });
      assert.equal(untrusted.status, 400);
      assert.match(untrusted.body.errors[0], /error checking jwks URL/);
      ok(
        await srv.api.call('POST', 'auth/tls/config', {
          body: { jwks_url: `${tlsIdp.url}/jwks`, jwks_ca_pem: readFileSync(cert.cert, 'utf8') },
        }),
      );
      ok(await srv.api.call('POST', 'auth/tls/role/app', { body: { bound_audiences: 'cofre', user_claim: 'sub' } }));
      assert.equal((await login(await sign(claims(), ec), 'app', 'tls')).status, 200);
      // The certificate itself as a static key (Vault takes certificates there too), signing with its key.
      ok(await srv.api.call('POST', 'sys/auth/certs', { body: { type: 'jwt' } }));
      ok(
        await srv.api.call('POST', 'auth/certs/config', {
          body: { jwt_validation_pubkeys: [readFileSync(cert.cert, 'utf8')] },
        }),
      );
      ok(await srv.api.call('POST', 'auth/certs/role/app', { body: { bound_audiences: 'cofre', user_claim: 'sub' } }));
      const certKey = await importPKCS8(readFileSync(cert.key, 'utf8'), 'RS256');
      const byCert = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(certKey);
      assert.equal((await login(byCert, 'app', 'certs')).status, 200);
      // While the IdP is down, the keys already fetched still verify; a key it has not seen is a 502 naming it.
      await tlsIdp.stop();
      assert.equal((await login(await sign(claims(), ec), 'app', 'tls')).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const down = await login(await sign(claims(), ec, { kid: 'unseen' }), 'app', 'tls');
      assert.equal(down.status, 502, down.text);
      assert.match(down.body.errors[0], /could not get the verification keys: could not fetch https:\/\/127\.0\.0\.1/);
      const badCa = await srv.api.call('POST', 'auth/tls/config', {
        body: { jwks_url: `${tlsIdp.url}/jwks`, jwks_ca_pem: 'not a certificate' },
      });
      assert.equal(badCa.status, 400);
    } finally {
      await tlsIdp.stop();
    }
  });

  it('a key added to the served JWKS later is picked up on its first token (refetch on an unknown kid)', async () => {
    const rotated = await signingKey('rsa-2', 'RS256');
    const token = await sign(claims(), rotated);
    await refused(token, /no key of the configured key set matches the token/);
    const fetchesBefore = idp.jwksFetches;
    idp.served = [...idp.served, rotated.publicJwk];
    // The refetch waits out a cooldown of a second after the last fetch.
    const res = await until(
      'the new key is used',
      async () => {
        const r = await login(await sign(claims(), rotated));
        return r.status === 200 ? r : undefined;
      },
      5_000,
    );
    assert.equal(res.body.auth.metadata.role, 'app');
    assert.ok(idp.jwksFetches > fetchesBefore);
    // Made-up kids do not make Cofre fetch the key set on every login.
    const burst = idp.jwksFetches;
    for (let i = 0; i < 20; i++) await refused(await sign(claims(), stranger, { kid: `nope-${i}` }), /no key/);
    assert.ok(idp.jwksFetches - burst <= 2, `${idp.jwksFetches - burst} fetches for 20 unknown kids`);
    // A key the IdP serves broken is the IdP's failure (502), not the server's (500) nor the token's.
    idp.served = [...idp.served, { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', kid: 'broken' }];
    const broken = await until(
      'the broken key is fetched',
      async () => {
        const r = await login(await sign(claims(), ec, { kid: 'broken' }));
        return r.status === 400 && /no key/.test(r.text) ? undefined : r;
      },
      5_000,
    );
    assert.equal(broken.status, 502, broken.text);
    assert.match(broken.body.errors[0], /could not use a key of the key set/);
  });

  it('a token is not renewed once its role is deleted', async () => {
    const role = { role_type: 'jwt', user_claim: 'sub', bound_audiences: 'cofre', token_policies: 'app-read' };
    ok(await srv.api.call('POST', 'auth/jwt/role/short', { body: role }));
    const token = (await login(await sign(claims()), 'short')).body.auth.client_token as string;
    const renew = () => srv.api.call('POST', 'auth/token/renew-self', { token, body: { increment: '1h' } });
    assert.equal((await renew()).status, 200);
    ok(await srv.api.call('DELETE', 'auth/jwt/role/short'));
    const res = await renew();
    assert.equal(res.status, 400, res.text);
    assert.match(res.body.errors[0], /role "short" no longer exists/);
    ok(await srv.api.call('POST', 'auth/jwt/role/short', { body: { ...role, token_policies: 'default' } }));
    assert.equal((await renew()).status, 400);
  });

  it('token_bound_cidrs: a login from outside them is refused with 403, one from inside gets a token bound to them', async () => {
    const base = { role_type: 'jwt', user_claim: 'sub', bound_audiences: 'cofre' };
    ok(await srv.api.call('POST', 'auth/jwt/role/far', { body: { ...base, token_bound_cidrs: ['10.0.0.0/8'] } }));
    const far = await login(await sign(claims()), 'far');
    assert.equal(far.status, 403, far.text);
    // A role's name is case-insensitive, as in Vault.
    ok(await srv.api.call('POST', 'auth/jwt/role/Near', { body: { ...base, token_bound_cidrs: '127.0.0.1/32' } }));
    const near = await login(await sign(claims()), 'NEAR');
    assert.equal(near.status, 200, near.text);
    assert.equal(near.body.auth.metadata.role, 'near');
    const self = await srv.api.call('GET', 'auth/token/lookup-self', { token: near.body.auth.client_token });
    assert.equal(self.status, 200, self.text);
  });

  it('config, roles and their list read back in Vault shape; bad writes are refused with 400', async () => {
    const config = await srv.api.call('GET', 'auth/jwt/config');
    assert.equal(config.body.data.jwks_url, `${idp.url}/jwks`);
    assert.equal(config.body.data.bound_issuer, ISSUER);
    const role = await srv.api.call('GET', 'auth/jwt/role/app');
    assert.equal(role.body.data.role_type, 'jwt');
    assert.deepEqual(role.body.data.bound_audiences, ['cofre']);
    assert.deepEqual(role.body.data.claim_mappings, { email: 'email', '/groups/0': 'first_group' });
    assert.deepEqual(role.body.data.token_policies, ['app-read']);
    assert.equal(role.body.data.token_ttl, 3600);
    const roles = await srv.api.call('LIST', 'auth/jwt/role');
    assert.ok(roles.body.data.keys.includes('app'));

    const bad = async (path: string, body: Record<string, unknown>, why: RegExp) => {
      const res = await srv.api.call('POST', `auth/jwt/${path}`, { body });
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.body.errors[0], why);
    };
    await bad('config', {}, /exactly one of/);
    await bad('config', { jwks_url: `${idp.url}/jwks`, jwt_validation_pubkeys: [rsa.spki] }, /exactly one of/);
    await bad('config', { jwks_url: 'file:///etc/passwd' }, /error checking jwks URL/);
    await bad('config', { jwks_url: `${idp.url}/missing` }, /error checking jwks URL/);
    await bad('config', { oidc_discovery_url: idp.url, oidc_client_id: 'x', oidc_client_secret: 'y' }, /not supported/);
    const base = { role_type: 'jwt', user_claim: 'sub', bound_audiences: 'cofre' };
    await bad('role/r1', { ...base, user_claim: '' }, /user claim must be defined/);
    await bad('role/r1', { role_type: 'jwt', user_claim: 'sub' }, /at least one bound constraint/);
    await bad('role/r1', { ...base, role_type: 'oidc' }, /not supported/);
    await bad('role/r1', { ...base, bound_claims_type: 'regex' }, /bound_claims_type/);
    await bad('role/r1', { ...base, claim_mappings: { email: 'role' } }, /reserved/);
    await bad('role/r1', { ...base, claim_mappings: { a: 'x', b: 'x' } }, /multiple keys/);
    await bad('role/r1', { ...base, bound_claims: { team: { nested: true } } }, /bound claim "team"/);
    await bad('role/r1', { ...base, token_ttl: '2h', token_max_ttl: '1h' }, /token_ttl/);
    assert.equal((await srv.api.call('GET', 'auth/jwt/role/r1')).status, 404);
  });

  it('a limited token gets 403 on the jwt paths its policy does not grant; login needs no token', async () => {
    const limited = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['app-read'] } });
    const token = limited.body.auth.client_token as string;
    for (const [method, path, body] of [
      ['GET', 'auth/jwt/config', undefined],
      ['POST', 'auth/jwt/config', { jwks_url: 'http://127.0.0.1:1/jwks' }],
      ['GET', 'auth/jwt/role/app', undefined],
      ['LIST', 'auth/jwt/role', undefined],
      ['POST', 'auth/jwt/role/mine', { user_claim: 'sub', bound_audiences: 'x', token_policies: 'root' }],
      ['DELETE', 'auth/jwt/role/app', undefined],
      ['GET', 'auth/jwt/role/does-not-exist', undefined],
    ] as const) {
      const res = await srv.api.call(method, path, { token, ...(body ? { body } : {}) });
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
    }
    assert.equal((await srv.api.call('GET', 'auth/jwt/role/app')).status, 200);
    const res = await srv.api.call('POST', 'auth/jwt/login', {
      token,
      body: { role: 'app', jwt: await sign(claims()) },
    });
    assert.equal(res.status, 200, res.text);
  });

  it('crafted logins and writes get a clean 4xx, never a 5xx', async () => {
    const good = await sign(claims());
    const [h, p, s] = good.split('.') as [string, string, string];
    const jwts: unknown[] = [
      '',
      'x',
      'a.b',
      'a.b.c',
      '...',
      `${h}.${p}`,
      `${h}.${p}.${s}.extra`,
      `${h}..${s}`,
      `.${p}.${s}`,
      `${b64('string')}.${p}.${s}`,
      `${b64([1, 2])}.${p}.${s}`,
      `${b64({ alg: 'RS256', kid: 'rsa-1', crit: ['exp'] })}.${p}.${s}`,
      `${b64({ alg: 'RS256', kid: 'rsa-1', b64: false, crit: ['b64'] })}.${p}.${s}`,
      `${b64({ alg: 'RS256', kid: { $ne: 1 } })}.${p}.${s}`,
      `${b64({ alg: 'RS256', kid: '__proto__' })}.${p}.${s}`,
      `${b64({ alg: ['RS256'] })}.${p}.${s}`,
      `${b64({ alg: 'ES512', kid: 'ec-1' })}.${p}.${s}`,
      `${b64({ alg: 'EdDSA', kid: 'rsa-1' })}.${p}.${s}`,
      `${h}.${Buffer.from('not json').toString('base64url')}.${s}`,
      `${h}.${b64('a string payload')}.${s}`,
      `${h}.${p}.${'A'.repeat(100_000)}`,
      `${h}.%%%.${s}`,
      good.replace(/\./g, ' . '),
      'eyJ'.repeat(100_000),
      12345,
      ['a', 'b'],
      { jwt: good },
      true,
    ];
    // Signed with a served key, these are well-formed JWTs with odd claims: role "app" refuses all but the last
    // two; other roles may accept some.
    const oddlySigned = await Promise.all(
      [
        claims({ exp: 'tomorrow' as unknown as number }),
        claims({ iat: null as unknown as number }),
        claims({ nbf: [1] as unknown as number }),
        claims({ aud: { x: 1 } as unknown as string }),
        claims({ iss: 42 as unknown as string }),
        claims({ sub: ['user-1'] as unknown as string }),
        claims({ groups: { a: 1 } }),
        claims({ groups: [1, 2] }),
        claims({ email: { nested: 'x' } }),
        claims({ exp: -1e308 }),
        { ...claims(), sub: undefined },
        claims({ exp: 1e308 }),
        { ...claims(), ...(JSON.parse('{"constructor":"x","__proto__":"y","toString":1}') as JWTPayload) },
      ].map((payload) => sign(payload)),
    );
    for (const jwt of [...jwts, ...oddlySigned]) {
      for (const role of ['app', 'exact', 'glob', 'pem', undefined]) {
        const mount = role === 'pem' ? 'oidc' : 'jwt';
        const res = await srv.api.call('POST', `auth/${mount}/login`, { token: '', body: { role, jwt } });
        const what = `${role} ${String(jwt).slice(0, 80)} → ${res.status} ${res.text}`;
        const mustRefuse = jwts.includes(jwt) || (role === 'app' && oddlySigned.indexOf(jwt as string) < 11);
        if (mustRefuse) assert.ok(res.status >= 400 && res.status < 500, what);
        else assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), what);
        assert.ok(typeof jwt !== 'string' || jwt.length < 8 || !res.text.includes(jwt), 'the error echoes the token');
      }
    }
    const raw = await srv.api.call('POST', 'auth/jwt/login', {
      token: '',
      raw: '{"role":"app","jwt":',
      headers: { 'content-type': 'application/json' },
    });
    assert.ok(raw.status >= 400 && raw.status < 500, raw.text);
    const roleBodies: Record<string, unknown>[] = [
      { user_claim: 'sub', bound_audiences: 'x', bound_claims: 'not a map' },
      { user_claim: 'sub', bound_audiences: 'x', bound_claims: { a: [] } },
      { user_claim: 'sub', bound_audiences: 'x', bound_claims: { a: null } },
      { user_claim: 'sub', bound_audiences: 'x', bound_claims: { a: [{ b: 1 }] } },
      { user_claim: 'sub', bound_audiences: 'x', claim_mappings: 'no-equals' },
      { user_claim: 'sub', bound_audiences: 'x', claim_mappings: [1, 2] },
      { user_claim: 'sub', bound_audiences: 'x', claim_mappings: { a: 1 } },
      { user_claim: 'sub', bound_audiences: 'x', claim_mappings: { a: '' } },
      { user_claim: 'sub', bound_audiences: 'x', clock_skew_leeway: 'forever' },
      { user_claim: 'sub', bound_audiences: 'x', expiration_leeway: { a: 1 } },
      { user_claim: 'sub', bound_audiences: 'x', not_before_leeway: '-x' },
      { user_claim: ['sub'], bound_audiences: 'x' },
      { user_claim: 'sub', bound_audiences: 'x', token_bound_cidrs: 'not-a-cidr' },
      { user_claim: 'sub', bound_audiences: 'x', role_type: 42 },
    ];
    for (const body of roleBodies) {
      const res = await srv.api.call('POST', 'auth/jwt/role/crafted', { body });
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body)} → ${res.status} ${res.text}`);
    }
    const configBodies: Record<string, unknown>[] = [
      { jwks_url: 'http://127.0.0.1:1/jwks' },
      { jwks_url: 'not a url' },
      { jwks_url: 'http://' },
      { oidc_discovery_url: 'ftp://example.test' },
      { jwks_url: `${idp.url}/jwks`, jwks_ca_pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
      { jwt_validation_pubkeys: 'just a string' },
      { jwt_validation_pubkeys: [rsa.spki], jwt_supported_algs: 'RS256,none' },
      { jwt_validation_pubkeys: [rsa.spki], jwks_pairs: [{ jwks_url: 'x' }] },
      { jwt_validation_pubkeys: [rsa.spki], provider_config: { provider: 'azure' } },
    ];
    for (const body of configBodies) {
      const res = await srv.api.call('POST', 'auth/jwt/config', { body });
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body)} → ${res.status} ${res.text}`);
    }
    // The config is unchanged by the refused writes.
    assert.equal((await login(await sign(claims()))).status, 200);
  });
});

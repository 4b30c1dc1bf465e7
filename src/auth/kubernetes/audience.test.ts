import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { audienceMismatch, claimedAudiences } from './audience.js';

/** An unsigned JWT with these claims: enough for messages, which never trust a claim (TokenReview decides). */
const jwt = (claims: object): string =>
  ['{"alg":"RS256"}', JSON.stringify(claims), 'sig'].map((part) => Buffer.from(part).toString('base64url')).join('.');

describe('the audience of a refused service-account token', () => {
  it('names the audience the token was for and the one the role wants, never the token', () => {
    const token = jwt({ aud: ['vault'], iss: 'https://kubernetes.default.svc' });
    const message = audienceMismatch(token, 'web', 'cofre')!;
    assert.match(message, /issued for audience "vault", but role "web" wants audience "cofre"/);
    assert.ok(!message.includes(token) && !message.includes(token.split('.')[1]!));
  });

  it("says that a role without an audience accepts only the API server's, with the fix", () => {
    const message = audienceMismatch(jwt({ aud: 'cofre', iss: 'https://issuer' }), 'web', '')!;
    assert.match(message, /issued for audience "cofre", and role "web" names no audience/);
    assert.match(message, /set audience="cofre" on the role/);
  });

  it('says nothing about audiences when they do not explain the refusal', () => {
    assert.equal(audienceMismatch(jwt({ aud: ['cofre'] }), 'web', 'cofre'), undefined, 'the wanted audience');
    const apiServers = jwt({ aud: ['https://issuer'], iss: 'https://issuer' });
    assert.equal(audienceMismatch(apiServers, 'web', ''), undefined, "the API server's own audience");
    assert.equal(audienceMismatch(jwt({ sub: 'x' }), 'web', 'cofre'), undefined, 'no audience claimed');
    assert.equal(audienceMismatch('not.a.jwt', 'web', 'cofre'), undefined, 'not a JWT');
  });

  it('keeps what a caller can put into the message short: three audiences, 100 characters each', () => {
    const long = 'a'.repeat(500);
    const message = audienceMismatch(jwt({ aud: [long, 'b', 'c', 'd', 'e'] }), 'web', 'cofre')!;
    assert.ok(!message.includes('a'.repeat(101)));
    assert.match(message, /"c" and 2 more/);
    assert.deepEqual(claimedAudiences(jwt({ aud: ['x', 7, 'y'] })).audiences, ['x', 'y'], 'strings only');
  });
});

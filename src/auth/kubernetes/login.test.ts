import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundMatches } from './login.js';

describe('boundMatches', () => {
  it('matches exact names, "*" and globs, and nothing else', () => {
    assert.equal(boundMatches(['app'], 'app'), true);
    assert.equal(boundMatches(['app'], 'app2'), false);
    assert.equal(boundMatches(['*'], 'anything'), true);
    assert.equal(boundMatches(['team-*'], 'team-a'), true);
    assert.equal(boundMatches(['team-*'], 'other-team-a'), false);
    assert.equal(boundMatches(['a.b'], 'axb'), false, 'dots are literal');
    assert.equal(boundMatches([], 'x'), false);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressAllowed, parseCidrs } from './cidr.js';

describe('CIDR bindings', () => {
  it('bind IPv4, IPv4 as a dual-stack listener reports it, and IPv6', () => {
    assert.equal(addressAllowed(['10.0.0.0/8'], '10.1.2.3'), true);
    assert.equal(addressAllowed(['10.0.0.0/8'], '::ffff:10.1.2.3'), true);
    assert.equal(addressAllowed(['10.0.0.0/8'], '127.0.0.1'), false);
    assert.equal(addressAllowed(['2001:db8::/32'], '2001:db8::1'), true);
    assert.equal(addressAllowed(['2001:db8::/32'], '::1'), false);
    assert.equal(addressAllowed(['192.0.2.7'], '192.0.2.7'), true, 'a bare address is a block of one');
    assert.equal(addressAllowed([], 'anything'), true, 'no blocks, no binding');
    assert.equal(addressAllowed(['10.0.0.0/8'], ''), false, 'an unknown address is outside every block');
  });

  it('refuse what is not a block, naming the field', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/', 'ten/8', '::/129', '10.0.0.0/x']) {
      assert.throws(() => parseCidrs([bad], 'token_bound_cidrs'), /invalid CIDR block in "token_bound_cidrs"/, bad);
    }
  });
});

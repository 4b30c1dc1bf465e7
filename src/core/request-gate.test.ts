import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RequestGate } from './request-gate.js';

describe('RequestGate', () => {
  it('seals at once when nothing runs, and is open again afterwards', async () => {
    const gate = new RequestGate();
    let seals = 0;
    await gate.close(() => seals++, 1000);
    assert.equal(seals, 1);
    assert.equal(gate.draining, false, 'a seal with nothing in flight must not leave the gate closed');
    const leave = gate.enter();
    assert.equal(gate.inFlight, 1);
    leave();
    leave(); // twice is once
    assert.equal(gate.inFlight, 0);
  });

  it('waits for the requests in flight; concurrent closes share one wait and one seal', async () => {
    const gate = new RequestGate();
    const a = gate.enter();
    const b = gate.enter();
    let seals = 0;
    const first = gate.close(() => seals++, 5000);
    const second = gate.close(() => seals++, 5000);
    assert.equal(gate.draining, true);
    a();
    await sleep(20);
    assert.equal(seals, 0, 'sealed while a request still ran');
    b();
    await Promise.all([first, second]);
    assert.equal(seals, 1);
    assert.equal(gate.draining, false);
  });

  it('seals after the timeout when a request hangs', async () => {
    const gate = new RequestGate();
    gate.enter(); // never leaves
    let sealedAt = 0;
    const started = Date.now();
    await gate.close(() => (sealedAt = Date.now()), 100);
    assert.ok(sealedAt - started >= 90, `sealed after ${sealedAt - started} ms`);
    assert.equal(gate.draining, false);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runServerThreads } from '../workers/primary.js';
import type { ServerFlags } from './server.js';
import { envSwitch } from './env-switch.js';

describe('a switch in the server’s environment', () => {
  it('is on, off or unset, and anything else is refused with what was given', () => {
    assert.equal(envSwitch('X', {}), undefined);
    assert.equal(envSwitch('X', { X: '' }), undefined);
    assert.equal(envSwitch('X', { X: 'on' }), 'on');
    assert.equal(envSwitch('X', { X: 'off' }), 'off');
    for (const meantOff of ['false', '0', 'no', 'OFF', ' off'])
      assert.throws(() => envSwitch('X', { X: meantOff }), {
        message: `X is on or off (not ${JSON.stringify(meantOff)})`,
      });
    assert.throws(() => envSwitch('X', { X: 'y'.repeat(100) }), {
      message: `X is on or off (not "${'y'.repeat(40)}")`,
    });
  });

  it('COFRE_FORWARD_WRITES=false stops a server with threads before it starts, instead of forwarding writes', async () => {
    const before = process.env.COFRE_FORWARD_WRITES;
    process.env.COFRE_FORWARD_WRITES = 'false';
    try {
      await assert.rejects(runServerThreads({ dev: true } as ServerFlags, 2), {
        message: 'COFRE_FORWARD_WRITES is on or off (not "false")',
      });
    } finally {
      if (before === undefined) delete process.env.COFRE_FORWARD_WRITES;
      else process.env.COFRE_FORWARD_WRITES = before;
    }
  });
});

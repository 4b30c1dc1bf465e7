import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { nowIso } from './now-iso.js';

describe('nowIso', () => {
  it('is the ISO string of the current millisecond, made again as soon as the clock moves', () => {
    mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-12-05T10:00:00.000Z') });
    try {
      assert.equal(nowIso(), '2026-12-05T10:00:00.000Z');
      assert.equal(nowIso(), new Date().toISOString());
      mock.timers.tick(1);
      assert.equal(nowIso(), '2026-12-05T10:00:00.001Z');
      mock.timers.setTime(Date.parse('2027-01-01T00:00:00.000Z'));
      assert.equal(nowIso(), '2027-01-01T00:00:00.000Z');
      // A clock set back is followed too.
      mock.timers.setTime(Date.parse('2026-01-01T00:00:00.000Z'));
      assert.equal(nowIso(), '2026-01-01T00:00:00.000Z');
    } finally {
      mock.timers.reset();
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { durationSeconds, MAX_DURATION_SECONDS, readDuration } from './duration.js';

describe('durationSeconds: the one duration parser', () => {
  const accepted: [unknown, number][] = [
    [0, 0],
    [90, 90],
    [1.5, 1.5],
    ['0', 0],
    ['', 0],
    ['  ', 0],
    ['90', 90],
    [' 90 ', 90],
    ['+90', 90],
    ['90s', 90],
    ['5m', 300],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['.5h', 1800],
    ['1.h', 3600],
    ['250ms', 0.25],
    ['1500ms', 1.5],
    ['1000000us', 1],
    ['1000000µs', 1],
    ['1000000μs', 1],
    ['1000000000ns', 1],
    ['7d', 604_800],
    ['1d12h', 129_600],
    ['1h1d', 90_000],
    [String(MAX_DURATION_SECONDS), MAX_DURATION_SECONDS],
    ['106751d', 106_751 * 86_400],
  ];
  for (const [input, seconds] of accepted) {
    it(`${JSON.stringify(input)} is ${seconds} s`, () => assert.equal(durationSeconds(input), seconds));
  }

  const refused: [unknown, string][] = [
    ['-1', 'negative'],
    ['-90s', 'negative'],
    [-5, 'negative'],
    ['-', 'syntax'],
    ['--5m', 'syntax'],
    ['5x', 'syntax'],
    ['5', 'ok'], // control row: a bare integer is seconds
    ['1.5', 'syntax'],
    ['h', 'syntax'],
    ['5 m', 'syntax'],
    ['1h 30m', 'syntax'],
    ['soon', 'syntax'],
    ['d', 'syntax'],
    [Number.POSITIVE_INFINITY, 'syntax'],
    [Number.NaN, 'syntax'],
    [true, 'syntax'],
    [null, 'syntax'],
    [{}, 'syntax'],
    [String(MAX_DURATION_SECONDS + 1), 'too-large'],
    ['106752d', 'too-large'],
    ['300y', 'syntax'],
    ['99999999999999999999999h', 'too-large'],
  ];
  for (const [input, problem] of refused) {
    it(`${JSON.stringify(String(input))} is ${problem === 'ok' ? 'accepted' : `refused (${problem})`}`, () => {
      const read = readDuration(input);
      if (problem === 'ok') assert.equal(read.ok, true);
      else assert.deepEqual(read, { ok: false, problem });
    });
  }
});

import assert from 'node:assert/strict';
import { inspect } from 'node:util';

/**
 * Calls `fn` every `every` ms until it gives something other than undefined or false, and returns that; fails the
 * test after `ms` with what it last saw (a value or an error), so a timeout says what was wrong.
 */
export async function poll<T>(
  what: string | (() => string),
  fn: () => Promise<T | undefined | false>,
  ms = 30_000,
  every = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      assert.fail(
        `timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()} (last: ${inspect(last)})`,
      );
    await new Promise((r) => setTimeout(r, every));
  }
}

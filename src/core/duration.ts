/**
 * The one duration parser of the server, the CLI, the client and the operator. It imports nothing, so every side
 * can use it without taking in anything else of the core.
 *
 * Accepted: a number of seconds (`90`, or a JSON number), or Go's time.ParseDuration syntax (`90s`, `1h30m`,
 * `1.5h`, `250ms`, units ns, us, µs, ms, s, m, h) with `d` (24 hours) accepted as a unit everywhere (`7d`,
 * `1d12h`), as Vault's parseutil accepts `7d`. Surrounding spaces are ignored, an empty string is 0 (as Vault's
 * parseutil). Refused: negative values (callers that take a signed duration strip the sign themselves), anything
 * else, and more than Go's time.Duration holds (about 292 years).
 */

/** Go's time.Duration ends near 292 years: Vault refuses more, and every time computed from a duration stays valid. */
export const MAX_DURATION_SECONDS = 9_223_372_036;

const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6, // U+00B5 micro sign
  μs: 1e-6, // U+03BC Greek mu; Go accepts both
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
};

const PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/y;

/** Why a value is not a duration. */
export type DurationProblem = 'syntax' | 'negative' | 'too-large';

export type DurationResult = { ok: true; seconds: number } | { ok: false; problem: DurationProblem };

/** Seconds (possibly fractional, as "1.5s" or "250ms" give) in `value`, or why it is not a duration. */
export function readDuration(value: unknown): DurationResult {
  const seconds = rawSeconds(value);
  if (typeof seconds === 'string') return { ok: false, problem: seconds };
  if (seconds > MAX_DURATION_SECONDS) return { ok: false, problem: 'too-large' };
  return { ok: true, seconds };
}

/** Seconds in `value`, or undefined when it is not an accepted duration. */
export function durationSeconds(value: unknown): number | undefined {
  const read = readDuration(value);
  return read.ok ? read.seconds : undefined;
}

/** The words after "invalid duration ...: " for each problem. */
export function durationProblemText(problem: DurationProblem): string {
  switch (problem) {
    case 'syntax':
      return 'expected seconds or a duration such as "1h30m"';
    case 'negative':
      return 'must not be negative';
    case 'too-large':
      return `at most ${MAX_DURATION_SECONDS} seconds (about 292 years)`;
  }
}

function rawSeconds(value: unknown): number | DurationProblem {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'syntax';
    return value < 0 ? 'negative' : value;
  }
  if (typeof value !== 'string') return 'syntax';
  let text = value.trim();
  if (text === '') return 0;
  if (text.startsWith('-'))
    return text.length > 1 && typeof rawSeconds(text.slice(1)) === 'number' ? 'negative' : 'syntax';
  if (text.startsWith('+')) text = text.slice(1);
  if (/^\d+$/.test(text)) return Number(text);
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    PART.lastIndex = pos;
    const m = PART.exec(text);
    if (!m) return 'syntax';
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
    pos = PART.lastIndex;
  }
  return pos === 0 ? 'syntax' : total;
}

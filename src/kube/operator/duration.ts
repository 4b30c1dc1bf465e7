import { durationSeconds } from '../../core/duration.js';

/**
 * Milliseconds in a CofreSecret's refresh.interval ("30s", "5m", "1h30m", "1.5h", "250ms"), read by the one
 * duration parser (src/core/duration.ts); undefined when it is not a duration. The CRD's schema admits only Go's
 * time.ParseDuration syntax there (its CEL rule parses it), so "d" and bare seconds never reach this.
 */
export function parseDuration(text: string): number | undefined {
  const seconds = durationSeconds(text);
  return seconds === undefined ? undefined : Math.round(seconds * 1000);
}

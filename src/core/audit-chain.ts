import { createHash } from 'node:crypto';

/**
 * Hash chain over audit lines: each line carries the SHA-256 of the line before it and a sequence number, so an
 * edited, removed or reordered line breaks the chain at that point. (Cutting lines off the end leaves a valid
 * shorter chain: compare the last sequence number with the server's to catch that.)
 *
 * A rotated log does not restart the chain: the first line of the new file links to the last line of the old one
 * (see src/audit/file.ts), so the files verify together, oldest first, or the new one alone as `continued`.
 */
export interface ChainState {
  seq: number;
  prev: string;
}

export const GENESIS: ChainState = { seq: 0, prev: '' };

export const lineHash = (line: string): string => createHash('sha256').update(line).digest('hex');

/** Appends the chain link to an entry and returns the line (without newline) and the next state. */
export function chainLine(entry: Record<string, unknown>, state: ChainState): { line: string; next: ChainState } {
  return chainJson(JSON.stringify(entry), state);
}

/**
 * chainLine for an entry already in JSON (an object, without a `chain` key), so that a writer holding the chain's
 * lock only appends the link: the same text as stringifying the entry with `chain` as its last key.
 */
export function chainJson(json: string, state: ChainState): { line: string; next: ChainState } {
  if (!json.startsWith('{') || !json.endsWith('}')) throw new TypeError('an audit entry is a JSON object');
  const seq = state.seq + 1;
  const link = `"chain":${JSON.stringify({ seq, prev: state.prev })}}`;
  const line = json === '{}' ? `{${link}` : `${json.slice(0, -1)},${link}`;
  return { line, next: { seq, prev: lineHash(line) } };
}

/** The chain state after the last complete line of a log, to continue it across restarts. */
export function stateAfter(lastLine: string | undefined): ChainState {
  if (!lastLine) return GENESIS;
  try {
    const parsed = JSON.parse(lastLine) as { chain?: { seq?: number } };
    return { seq: parsed.chain?.seq ?? 0, prev: lineHash(lastLine) };
  } catch {
    return { seq: 0, prev: lineHash(lastLine) };
  }
}

export interface VerifyResult {
  ok: boolean;
  lines: number;
  /** 1-based line number of the first break, and why. */
  problem?: { line: number; reason: string };
  /** The chain state after the last line, to check that a next (rotated) file continues it. */
  last?: ChainState;
}

/**
 * `continued` accepts a first line that continues an earlier (rotated) log instead of starting the chain; `after`
 * requires the first line to continue exactly that state (the end of the file before it).
 */
export function verifyLines(lines: string[], opts: { continued?: boolean; after?: ChainState } = {}): VerifyResult {
  let state: ChainState | undefined = opts.after ?? (opts.continued ? undefined : GENESIS);
  let count = 0;
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    count++;
    let chain: { seq?: unknown; prev?: unknown } | undefined;
    try {
      chain = (JSON.parse(line) as { chain?: { seq?: unknown; prev?: unknown } }).chain;
    } catch {
      return { ok: false, lines: count, problem: { line: i + 1, reason: 'not valid JSON' } };
    }
    if (!chain || typeof chain.seq !== 'number' || typeof chain.prev !== 'string') {
      return { ok: false, lines: count, problem: { line: i + 1, reason: 'no chain link' } };
    }
    if (state) {
      if (chain.seq !== state.seq + 1) {
        return {
          ok: false,
          lines: count,
          problem: { line: i + 1, reason: `sequence ${chain.seq} follows ${state.seq}` },
        };
      }
      if (chain.prev !== state.prev) {
        return {
          ok: false,
          lines: count,
          problem: { line: i + 1, reason: 'previous line was changed, removed or reordered' },
        };
      }
    }
    state = { seq: chain.seq, prev: lineHash(line) };
  }
  return { ok: true, lines: count, ...(state ? { last: state } : {}) };
}

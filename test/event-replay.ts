/**
 * Reads `sys/cofre/events?index=0`: the change log replayed from the store, then live events. For tests and benches
 * that check which changes the log holds.
 */
import { SseSplitter, type SseFrame } from '../src/client/sse.js';

export interface ReplayOptions {
  /** Called with each frame in order; returns true when the replay has read enough. */
  frame(frame: SseFrame): boolean;
  /** Also stop once no chunk came for this long (undefined: only `frame` or the timeout ends the replay). */
  quietMs?: number;
  /** Refuse after this long in all. */
  timeoutMs?: number;
}

/** A change event's data, as the stream sends it (never a value). */
export interface ChangeData {
  index: number;
  path: string;
  kind: string;
  version?: number;
}

/**
 * Hands each frame of a stream from index 0 to `opts.frame` until it says enough, or a quiet spell ends the replay.
 * A `reset` or `error` frame is refused: the replay then does not hold every event, and a caller counting events
 * must not take it as if it did.
 */
export async function replayEvents(url: string, token: string, opts: ReplayOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const res = await fetch(`${url}/v1/sys/cofre/events?index=0`, {
    headers: { 'x-vault-token': token },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) throw new Error(`events stream: ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const splitter = new SseSplitter(1 << 20);
  let read = 0;
  try {
    for (;;) {
      const next = await readOrQuiet(reader, opts.quietMs);
      if (next === 'quiet') return;
      if (next.done) throw new Error(`the event stream ended after ${read} frames`);
      for (const frame of splitter.push(decoder.decode(next.value, { stream: true }))) {
        if (frame.event === 'reset' || frame.event === 'error') {
          throw new Error(`the event stream sent ${frame.event}: ${JSON.stringify(frame.data)}`);
        }
        read++;
        if (opts.frame(frame)) return;
      }
    }
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') {
      throw new Error(`the event stream was not done after ${timeoutMs} ms (${read} frames read)`);
    }
    throw err;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** A frame's change event; undefined for any other frame (hello). */
export function changeOf(frame: SseFrame): ChangeData | undefined {
  return frame.event === 'change' ? (frame.data as unknown as ChangeData) : undefined;
}

async function readOrQuiet(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  quietMs: number | undefined,
): Promise<ReadableStreamReadResult<Uint8Array> | 'quiet'> {
  if (quietMs === undefined) return reader.read();
  let timer: NodeJS.Timeout | undefined;
  const quiet = new Promise<'quiet'>((resolve) => (timer = setTimeout(() => resolve('quiet'), quietMs)));
  try {
    return await Promise.race([reader.read(), quiet]);
  } finally {
    clearTimeout(timer);
  }
}

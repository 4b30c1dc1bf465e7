import type { IncomingMessage } from 'node:http';

/** One server-sent event: its type, its id when it has one, and its data parsed as JSON. */
export interface SseFrame {
  id?: string;
  event: string;
  data: Record<string, unknown>;
}

/**
 * Cuts a stream's text into server-sent events. A frame is held until its blank line arrives, so a server that
 * never sends one (or sends a frame of hundreds of megabytes) would fill the reader's memory: past `maxFrameChars`
 * the stream is refused. The operator follows streams of addresses its tenants choose.
 */
export class SseSplitter {
  private buffer = '';

  constructor(private readonly maxFrameChars: number) {}

  /** The frames `chunk` completes, in order; throws when the frame being read is larger than the limit. */
  push(chunk: string): SseFrame[] {
    this.buffer += chunk.replace(/\r\n/g, '\n');
    const frames: SseFrame[] = [];
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const frame = parseFrame(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end + 2);
      if (frame) frames.push(frame);
    }
    if (this.buffer.length > this.maxFrameChars) {
      this.buffer = '';
      throw new Error(`the event stream sent a frame of more than ${this.maxFrameChars} characters`);
    }
    return frames;
  }
}

/**
 * Reads an event stream's frames as they come: `heard` on every chunk (the stream is alive), `frame` for each
 * complete frame, `refused` once (and nothing more) when a frame outgrows `maxFrameChars`.
 */
export function followFrames(
  res: IncomingMessage,
  maxFrameChars: number,
  on: { heard(): void; frame(frame: SseFrame): void; refused(message: string): void },
): void {
  const frames = new SseSplitter(maxFrameChars);
  let refused = false;
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    if (refused) return;
    on.heard();
    let completed: SseFrame[];
    try {
      completed = frames.push(chunk);
    } catch (err) {
      refused = true;
      on.refused((err as Error).message);
      return;
    }
    for (const frame of completed) on.frame(frame);
  });
}

/** One frame's fields; undefined for a comment-only frame or one whose data is not JSON. */
function parseFrame(block: string): SseFrame | undefined {
  let event = 'message';
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return undefined;
  try {
    return { ...(id !== undefined ? { id } : {}), event, data: JSON.parse(data.join('\n')) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

import { stdio } from './output.js';

/** After this long an operation says on stderr what it is doing, then again at this interval. */
const QUIET_MS = 1_000;

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * A status line on stderr for a command that may run long: silent for the first second, so quick runs print
 * nothing extra, then the current state once a second (rewritten in place on a terminal, one line each otherwise).
 */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private shown = false;
  private stopped = false;
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(private readonly describe: (elapsedSeconds: number) => string) {
    this.tty = (stdio.stderr as { isTTY?: boolean }).isTTY === true;
    this.timer = setTimeout(() => {
      this.print();
      this.timer = setInterval(() => this.print(), QUIET_MS).unref();
    }, QUIET_MS).unref();
  }

  /** Stops the updates; ends the status line if one was shown. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
    if (this.shown) this.print(true);
  }

  private print(last = false): void {
    this.shown = true;
    const line = this.describe(Math.round((Date.now() - this.started) / 1000));
    if (this.tty) stdio.stderr.write(`\r\x1b[K${line}${last ? '\n' : ''}`);
    else stdio.stderr.write(`${line}\n`);
  }
}

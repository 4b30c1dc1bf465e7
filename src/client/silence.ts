/**
 * How long a long-lived event stream may bring nothing before its client takes the connection as dead. Cofre's
 * event streams write a heartbeat every 15 s (src/http/server.ts), so this is three missed heartbeats. A
 * connection can die without a word reaching the client (a peer gone without a FIN or RST, a NAT entry or a proxy
 * that dropped it, a server that took the connection and never answers), and then only such a deadline ends it.
 */
export const STREAM_SILENCE_MS = 45_000;

/** A deadline that every byte received pushes back; past it, `onSilent` runs (once). */
export interface SilenceDeadline {
  /** Something arrived (or the request went out): the deadline starts again from now. */
  heard(): void;
  clear(): void;
}

/** Not running until the first `heard()`. */
export function silenceDeadline(ms: number, onSilent: () => void): SilenceDeadline {
  let timer: NodeJS.Timeout | undefined;
  let over = false;
  const clear = (): void => {
    over = true;
    clearTimeout(timer);
  };
  const heard = (): void => {
    if (over) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      clear();
      onSilent();
    }, ms);
    // The deadline watches a connection; it never keeps a process alive by itself.
    timer.unref();
  };
  return { heard, clear };
}

/** The error a client logs for a connection given up on. */
export function silenceMessage(ms: number): string {
  return `nothing received for ${ms / 1000} s: the connection is taken as dead`;
}

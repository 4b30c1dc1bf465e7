// The operator's log function. Its level is optional so a plain `log(msg, fields)` stays an info line; failures say
// `warn` (retried, may heal by itself) or `error` (needs someone), so `--log-level warn` shows exactly those.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Log = (msg: string, fields?: object, level?: LogLevel) => void;

/** JSON lines on stderr, for callers that bring no logger (the CLI brings pino). */
export const stderrLog: Log = (msg, fields, level = 'info') =>
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, component: 'operator', msg, ...fields })}\n`,
  );

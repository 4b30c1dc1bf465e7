// The agent's log: one JSON object a line on stderr (the container log). Callers pass only names, paths, counts,
// times and error messages built from those; no value, token or JWT is ever a field (docs/in-pod-agent.md).

export type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export function jsonLog(component: string, write: (line: string) => void = (l) => process.stderr.write(l)): Log {
  return (level, msg, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields })}\n`);
  };
}

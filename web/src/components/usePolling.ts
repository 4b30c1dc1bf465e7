import { useEffect, useRef, useState } from 'react';

/**
 * Loads data now and again every `intervalMs` while the page is open and the tab visible; one load at a time, and
 * none after the page is left. For state nothing streams to the browser (the agents' reports), so polling it is
 * the only way to see it move.
 */
export function usePolling<T>(load: () => Promise<T>, intervalMs: number, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; at?: Date }>({});
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      if (!document.hidden) {
        try {
          const data = await loadRef.current();
          if (!stopped) setState({ data, at: new Date() });
        } catch (error) {
          if (!stopped) setState((s) => ({ ...s, error, at: new Date() }));
        }
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    setState({});
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [intervalMs, ...deps]);
  return state;
}

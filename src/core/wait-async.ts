type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeout: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };

/**
 * Atomics.waitAsync (Node.js 16+), which TypeScript's library for this target does not declare: waits for a
 * notify on a shared slot without blocking the event loop, for locks shared by server threads.
 */
export const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

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
const atomicsWaitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Waits until `array[index]` may no longer be `value` (a notify, or `timeoutMs`). A pending Atomics.waitAsync does
 * not keep Node.js's event loop alive: a thread with nothing else to do exited in the middle of the wait, without
 * an error (one run in twelve of chain-cell.test.ts hung so). A timer of the same length keeps it alive.
 */
export async function waitForChange(array: Int32Array, index: number, value: number, timeoutMs: number): Promise<void> {
  const waited = atomicsWaitAsync(array, index, value, timeoutMs);
  if (!waited.async) return;
  const alive = setTimeout(() => {}, timeoutMs + 10);
  try {
    await waited.value;
  } finally {
    clearTimeout(alive);
  }
}

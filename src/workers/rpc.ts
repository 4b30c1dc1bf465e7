/**
 * Calls between the primary thread and a server thread over one port: each side answers the other's calls with
 * its handlers and awaits its own calls' answers. Errors cross as their message, and a CofreError with its HTTP
 * status (a call forwarded from a request answers as the request would have where it ran).
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import { CofreError } from '../core/errors.js';

/** Each handler names the type of its arguments; what crosses the port is trusted to match (both ends are ours). */
type Handler = (args: never) => unknown;

interface CallMessage {
  call: number;
  method: string;
  args: unknown;
}

interface AnswerMessage {
  answer: number;
  value?: unknown;
  error?: string;
  status?: number;
}

export interface Rpc {
  call<T = unknown>(method: string, args?: unknown): Promise<T>;
  /** Rejects every call still waiting (the other side is gone). */
  fail(reason: Error): void;
}

export function rpc(port: MessagePort | Worker, handlers: Record<string, Handler>): Rpc {
  let next = 1;
  const waiting = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  port.on('message', (message: CallMessage | AnswerMessage | object) => {
    if ('answer' in message) {
      const pending = waiting.get(message.answer);
      waiting.delete(message.answer);
      if (message.error === undefined) pending?.resolve(message.value);
      else if (message.status === undefined) pending?.reject(new Error(message.error));
      else pending?.reject(new CofreError(message.status, message.error));
    } else if ('call' in message) {
      const handler = Object.hasOwn(handlers, message.method) ? handlers[message.method] : undefined;
      const fail = (err: unknown) =>
        port.postMessage({
          answer: message.call,
          error: err instanceof Error ? err.message : String(err),
          ...(err instanceof CofreError ? { status: err.status } : {}),
        } satisfies AnswerMessage);
      Promise.resolve()
        .then(() => {
          if (!handler) throw new Error(`no handler for ${message.method}`);
          return (handler as (args: unknown) => unknown)(message.args);
        })
        .then(
          (value) => {
            // A value that cannot be cloned (a function, say) is the handler's bug: the caller hears of it rather
            // than waiting forever, and this thread does not die of an unhandled rejection.
            try {
              port.postMessage({ answer: message.call, value } satisfies AnswerMessage);
            } catch (err) {
              fail(new Error(`the answer could not be sent between threads: ${(err as Error).message}`));
            }
          },
          (err: unknown) => fail(err),
        );
    }
  });
  return {
    call<T>(method: string, args?: unknown): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
        try {
          port.postMessage({ call: id, method, args } satisfies CallMessage);
        } catch (err) {
          waiting.delete(id);
          reject(err as Error);
        }
      });
    },
    fail(reason) {
      for (const pending of waiting.values()) pending.reject(reason);
      waiting.clear();
    },
  };
}

import type { PathRecord, StreamFrame } from '../backend.js';
import { callerToken, whenCallerTokenGone } from '../caller-token-watch.js';
import type { ChangeEvent } from '../change-log.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';

/**
 * sys/cofre/events: the change stream as server-sent events. Any valid token may subscribe; each event is sent
 * only if the token (as it is now: revocations and policy changes apply at once) may read the event's path, and the
 * stream ends as the token is revoked or expires.
 * Resume with ?index=N or the Last-Event-ID header: events after N are replayed first.
 */
export function eventPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: 'cofre/events',
      summary: 'Streams changes (path, kind, version, index; never values) as server-sent events.',
      anyToken: true,
      fields: { index: { type: 'int', description: 'Resume after this index (default: only new events).' } },
      operations: {
        read: async (req) => {
          const caller = req.caller!;
          // "Now", taken once: the hello names it, and a stream opened without an index goes on from it. Read again
          // for the hello it could be past a change told meanwhile, which a client that took the hello's index as
          // its own and lost the connection at once would then skip on resuming.
          const now = core.changes.lastIndex;
          const from = (req.data.index as number | undefined) ?? now;
          if (from < 0) throw badRequest('"index" must not be negative');
          const revoked: StreamFrame = { event: 'error', data: JSON.stringify({ error: 'token revoked or expired' }) };
          async function* frames(signal: AbortSignal): AsyncGenerator<StreamFrame> {
            // The token revoked or expired (here or on another node), the stream ends as that is made, not at the
            // next event it would have been checked for.
            const stop = new AbortController();
            let gone = false;
            const unwatch = whenCallerTokenGone(core.tokens, caller, () => {
              gone = true;
              stop.abort();
            });
            try {
              yield { event: 'hello', data: JSON.stringify({ index: now }) };
              for await (const delivery of core.changes.subscribe(from, AbortSignal.any([signal, stop.signal]))) {
                if (delivery.type === 'reset') {
                  yield { id: String(delivery.index), event: 'reset', data: JSON.stringify({ index: delivery.index }) };
                  continue;
                }
                const token = await callerToken(core.tokens, caller);
                if (!token) {
                  yield revoked;
                  return;
                }
                const acl = await core.policies.acl(token.policies);
                if (acl.check(delivery.event.aclPath, 'read').allowed) yield frameOf(delivery.event);
              }
              if (gone && !signal.aborted) yield revoked;
            } finally {
              unwatch();
            }
          }
          return { stream: frames };
        },
      },
    },
  ];
}

function frameOf(event: ChangeEvent): StreamFrame {
  const { aclPath: _acl, ...visible } = event;
  return { id: String(event.index), event: 'change', data: JSON.stringify(visible) };
}

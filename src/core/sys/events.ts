import type { PathRecord, StreamFrame } from '../backend.js';
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
          // A batch token is not stored: it is checked again as a whole (its expiry, its parent).
          const current = () =>
            caller.token.type === 'batch'
              ? core.tokens.lookup(caller.clientToken)
              : core.tokens.lookupByHash(caller.tokenId);
          const revoked: StreamFrame = { event: 'error', data: JSON.stringify({ error: 'token revoked or expired' }) };
          async function* frames(signal: AbortSignal): AsyncGenerator<StreamFrame> {
            // A token revoked (here or on another node) ends the stream as that is made, not at the next event it
            // would have been checked for: a service token's own entry is watched, a batch token's parent (what
            // revokes it), and either is checked again at its expiry.
            const stop = new AbortController();
            const onAbort = (): void => stop.abort();
            signal.addEventListener('abort', onAbort);
            let gone = false;
            let finished = false;
            let expiry: NodeJS.Timeout | undefined;
            const recheck = (): void => {
              void current().then(
                (token) => {
                  if (finished) return;
                  if (token) return armExpiry(token.expireTime);
                  gone = true;
                  stop.abort();
                },
                // The store unreachable (every cache was dropped, say): the next event's own check decides.
                () => undefined,
              );
            };
            // Checked again just past the token's expiry as last looked up (a renewal moves it; a timer may fire a
            // millisecond early, and a check that still finds the token arms the next one).
            const armExpiry = (expireTime: number): void => {
              clearTimeout(expiry);
              if (expireTime <= 0) return;
              expiry = setTimeout(recheck, Math.min(2 ** 31 - 1, Math.max(0, expireTime - Date.now() + 1)));
              expiry.unref();
            };
            const watched = caller.token.type === 'batch' ? caller.token.parentHash : caller.tokenId;
            const unwatch = watched ? core.tokens.watch(watched, recheck) : () => undefined;
            // And once now: a revocation made since the request was authorised (its last use, say) told no watch.
            recheck();
            try {
              yield { event: 'hello', data: JSON.stringify({ index: now }) };
              for await (const delivery of core.changes.subscribe(from, stop.signal)) {
                if (delivery.type === 'reset') {
                  yield { id: String(delivery.index), event: 'reset', data: JSON.stringify({ index: delivery.index }) };
                  continue;
                }
                const token = await current();
                if (!token) {
                  yield revoked;
                  return;
                }
                const acl = await core.policies.acl(token.policies);
                if (acl.check(delivery.event.aclPath, 'read').allowed) yield frameOf(delivery.event);
              }
              if (gone && !signal.aborted) yield revoked;
            } finally {
              finished = true;
              unwatch();
              clearTimeout(expiry);
              signal.removeEventListener('abort', onAbort);
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

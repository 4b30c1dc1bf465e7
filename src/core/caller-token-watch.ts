// What a stream that outlives its request needs to end as its caller's token does (sys/cofre/events, the cluster
// agent's stream): the token as it is now, and a call when it is gone.
import type { Caller } from './backend.js';
import type { TokenEntry, TokenStore } from './token-store.js';

/**
 * The caller's token as it is now, or undefined when revoked or expired. A batch token is not stored: it is checked
 * again as a whole (its expiry, its parent).
 */
export function callerToken(tokens: TokenStore, caller: Caller): Promise<TokenEntry | undefined> {
  return caller.token.type === 'batch' ? tokens.lookup(caller.clientToken) : tokens.lookupByHash(caller.tokenId);
}

/**
 * Calls `gone` once the caller's token is found revoked or expired: when the token store says its entry changed
 * (a service token's own, a batch token's parent: what revokes it), just past its expiry as last looked up (a
 * renewal moves it; a timer may fire a millisecond early, and a check that still finds the token arms the next),
 * and once at once (a revocation made since the request was authorised, its last use say, told nobody). A lookup
 * that fails (the store unreachable) calls nothing: the stream's own next check decides. Returns what stops it.
 */
export function whenCallerTokenGone(tokens: TokenStore, caller: Caller, gone: () => void): () => void {
  let stopped = false;
  let expiry: NodeJS.Timeout | undefined;
  const armExpiry = (expireTime: number): void => {
    clearTimeout(expiry);
    if (expireTime <= 0) return;
    expiry = setTimeout(check, Math.min(2 ** 31 - 1, Math.max(0, expireTime - Date.now() + 1)));
    expiry.unref();
  };
  function check(): void {
    void callerToken(tokens, caller).then(
      (token) => {
        if (stopped) return;
        if (token) return armExpiry(token.expireTime);
        stopped = true;
        gone();
      },
      () => undefined,
    );
  }
  const watched = caller.token.type === 'batch' ? caller.token.parentHash : caller.tokenId;
  const unwatch = watched ? tokens.watch(watched, check) : () => undefined;
  check();
  return () => {
    stopped = true;
    unwatch();
    clearTimeout(expiry);
  };
}

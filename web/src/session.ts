/**
 * The signed-in token. It lives in memory and in sessionStorage (so a reload of the tab keeps the session, and
 * closing the tab ends it); never in localStorage, a cookie or a URL.
 */
const KEY = 'cofre.token';
/** How the token came: a login in this tab made it (and it is this tab's to revoke), or the user pasted it. */
const ORIGIN_KEY = 'cofre.token-origin';

export type TokenOrigin = 'login' | 'pasted';

let token: string | undefined = sessionStorage.getItem(KEY) ?? undefined;
let origin: TokenOrigin = sessionStorage.getItem(ORIGIN_KEY) === 'login' ? 'login' : 'pasted';

export const currentToken = (): string | undefined => token;

export const tokenOrigin = (): TokenOrigin => origin;

export function signIn(value: string, from: TokenOrigin = 'pasted'): void {
  token = value;
  origin = from;
  sessionStorage.setItem(KEY, value);
  sessionStorage.setItem(ORIGIN_KEY, from);
}

export function signOut(): void {
  token = undefined;
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ORIGIN_KEY);
}

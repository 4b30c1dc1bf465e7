/**
 * The signed-in token. It lives in memory and in sessionStorage (so a reload of the tab keeps the session, and
 * closing the tab ends it); never in localStorage, a cookie or a URL.
 */
const KEY = 'cofre.token';

let token: string | undefined = sessionStorage.getItem(KEY) ?? undefined;

export const currentToken = (): string | undefined => token;

export function signIn(value: string): void {
  token = value;
  sessionStorage.setItem(KEY, value);
}

export function signOut(): void {
  token = undefined;
  sessionStorage.removeItem(KEY);
}

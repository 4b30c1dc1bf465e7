/**
 * A router of one job: the page is the path below /ui/ (history API), so pages can be bookmarked and the back
 * button works. Paths name mounts, secrets, policies and lease prefixes, never a value or a token.
 */
import { useEffect, useState } from 'react';

const BASE = '/ui/';

/** The path below /ui/, decoded per segment ("secrets/secret/app/config"). */
function currentRoute(): string[] {
  const rest = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '';
  return rest === '' ? [] : rest.split('/').map((s) => decodeURIComponent(s));
}

export const hrefOf = (segments: string[]): string => BASE + segments.map(encodeURIComponent).join('/');

export function navigate(segments: string[]): void {
  history.pushState(null, '', hrefOf(segments));
  window.dispatchEvent(new PopStateEvent('popstate'));
}

export function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = (): void => setRoute(currentRoute());
    window.addEventListener('popstate', update);
    return () => window.removeEventListener('popstate', update);
  }, []);
  return route;
}

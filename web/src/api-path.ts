/**
 * An API path as the UI sends it: each segment percent-encoded (secret names may hold spaces, "#" or "?"), slashes
 * kept. A "." or ".." segment is refused: the browser resolves it before the request leaves (fetch normalises the
 * URL), so a page for a name such as "../../../sys/mounts/secret" (a crafted /ui/ link, "%2F" decoded into a name)
 * would send the signed-in user's request, a Delete included, to another path than the page shows, and the server
 * could not tell.
 */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => {
      if (segment === '.' || segment === '..') throw new UnsafePathError();
      return encodeURIComponent(segment);
    })
    .join('/');
}

export class UnsafePathError extends Error {
  constructor() {
    super('a name with a "." or ".." path segment cannot be used here: it would reach another path');
  }
}

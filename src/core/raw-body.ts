/**
 * A request body that is bytes rather than JSON (a snapshot to restore): the HTTP layer hands it over unread, as a
 * stream, for the one handler that wants it. It rides on the request's body object under a symbol and is not
 * enumerable, so field parsing, policy parameter checks and the audit log never see it.
 */
const RAW_BODY = Symbol('cofre.rawBody');

/** The body object for a request whose bytes are left to the handler. */
export function rawBodyRequest(bytes: AsyncIterable<Uint8Array>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  Object.defineProperty(body, RAW_BODY, { value: bytes, enumerable: false });
  return body;
}

/** The unread bytes of the request, when it was sent as application/octet-stream. */
export function rawBodyOf(body: Record<string, unknown>): AsyncIterable<Uint8Array> | undefined {
  return (body as { [RAW_BODY]?: AsyncIterable<Uint8Array> })[RAW_BODY];
}

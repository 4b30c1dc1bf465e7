import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** A JWKS or discovery document larger than this is refused: a key set is a few KiB. */
export const MAX_DOCUMENT_BYTES = 1 << 20;
export const FETCH_TIMEOUT_MS = 5_000;

/**
 * The key source (jwks_url, oidc_discovery_url) could not be read: a failure of the configured server, not of
 * the token. The message names the URL and the reason, never a token.
 */
export class KeySourceUnavailable extends Error {
  override readonly name = 'KeySourceUnavailable';
}

/**
 * GETs a JSON document over http(s), trusting only `ca` when it is given (as Vault's jwks_ca_pem replaces the
 * system roots). Redirects are not followed, the body is capped at MAX_DOCUMENT_BYTES, and anything but a 200
 * with a JSON object is a KeySourceUnavailable.
 */
export async function getJson(
  url: string,
  opts: { ca?: string; signal?: AbortSignal; headers?: Record<string, string> } = {},
): Promise<Record<string, unknown>> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new KeySourceUnavailable(`${url} is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new KeySourceUnavailable(`${url} is not an http(s) URL`);
  }
  const signal = opts.signal ?? AbortSignal.timeout(FETCH_TIMEOUT_MS);
  const body = await new Promise<Buffer>((resolve, reject) => {
    const fail = (why: string): void => reject(new KeySourceUnavailable(`could not fetch ${parsed.href}: ${why}`));
    const onResponse = (res: IncomingMessage): void => {
      if (res.statusCode !== 200) {
        res.resume();
        fail(`it answered ${res.statusCode ?? 'no status'} (expected 200)`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_DOCUMENT_BYTES) {
          res.destroy();
          fail(`the document is larger than ${MAX_DOCUMENT_BYTES} bytes`);
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', (err) => fail(err.message));
    };
    const options = {
      method: 'GET',
      signal,
      headers: { accept: 'application/json, application/jwk-set+json', ...(opts.headers ?? {}) },
    };
    const req =
      parsed.protocol === 'https:'
        ? httpsRequest(parsed, { ...options, ...(opts.ca ? { ca: opts.ca } : {}) }, onResponse)
        : httpRequest(parsed, options, onResponse);
    req.on('error', (err) => fail(signal.aborted ? `no answer within ${FETCH_TIMEOUT_MS} ms` : err.message));
    req.end();
  });
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new KeySourceUnavailable(`${parsed.href} did not answer with JSON`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new KeySourceUnavailable(`${parsed.href} did not answer with a JSON object`);
  }
  return json as Record<string, unknown>;
}

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { apiUrl, type ClientConfig } from './client.js';
import { ApiError } from './errors.js';
import { caBundle } from './transport.js';
import { unreachableError } from './unreachable.js';

export interface StreamRequest {
  method: string;
  /** Relative to /v1. */
  path: string;
  /** Describes the operation in error messages. */
  what: string;
  body?: { stream: Readable; contentType: string; length?: number };
}

/**
 * One HTTP exchange whose body goes out or comes back as a stream (snapshots: too large for the JSON client, which
 * buffers). Resolves with the response of a 2xx answer, unread; throws ApiError with the server's errors otherwise.
 */
export async function streamRequest(config: ClientConfig, req: StreamRequest): Promise<IncomingMessage> {
  const url = apiUrl(config.address, req.path);
  const headers: Record<string, string> = { 'X-Vault-Request': 'true' };
  if (config.token) headers['X-Vault-Token'] = config.token;
  if (req.body) {
    headers['Content-Type'] = req.body.contentType;
    if (req.body.length !== undefined) headers['Content-Length'] = String(req.body.length);
  }
  let res: IncomingMessage;
  try {
    const tls = url.startsWith('https:') ? { ca: caBundle(config), rejectUnauthorized: !config.tlsSkipVerify } : {};
    res = await new Promise<IncomingMessage>((resolve, reject) => {
      const out = (url.startsWith('https:') ? https : http).request(
        url,
        { method: req.method, headers, ...tls },
        resolve,
      );
      out.on('error', reject);
      if (!req.body) out.end();
      // A server that answers before reading the whole body (a refusal) ends the upload; its answer says why.
      else pipeline(req.body.stream, out).catch(() => {});
    });
  } catch (err) {
    throw unreachableError(config.address, err, config);
  }
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return res;
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let errors: string[] | undefined;
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) errors = parsed.errors.map(String);
  } catch {
    // not JSON: shown raw below
  }
  throw new ApiError(req.what, req.method, url, status, errors ?? [], errors ? undefined : text);
}

import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import https from 'node:https';

/**
 * The whole exchange, the answer's last byte included: a server that trickles its answer (a byte now and then keeps
 * an idle timeout from firing) must not hold its caller for good. The operator and the CSI provider talk to
 * addresses their tenants choose, and one held call stops a worker every namespace shares.
 */
export const TIMEOUT_MS = 60_000;
/** The largest answer read (a list of every key of a large mount fits many times over); more is refused. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** The largest CA bundle file read: a PEM bundle of every public CA is about 250 KiB. */
export const MAX_CA_FILE_BYTES = 1024 * 1024;

export interface RawResponse {
  status: number;
  text: string;
}

/** How to verify an https server: a CA bundle (PEM) as a file or as bytes, or no verification at all. */
export interface TlsSettings {
  /** Path of a PEM CA bundle (read on every request, so a rotated file is picked up). */
  caCert?: string;
  /** A PEM CA bundle itself (the operator has it from a CofreConnection's caBundle); caCert wins if both are set. */
  caCertBytes?: string | Uint8Array;
  tlsSkipVerify?: boolean;
}

/** Bounds of one exchange; the defaults above when unset. */
export interface ExchangeLimits {
  timeoutMs?: number;
  maxResponseBytes?: number;
}

/** An answer larger than the caller accepts: refused, unread past the limit. */
export class AnswerTooLargeError extends Error {
  constructor(limit: number) {
    super(`the answer exceeded ${limit} bytes; it was not read further`);
    this.name = 'AnswerTooLargeError';
  }
}

/**
 * The CA bundle of `tls`, or undefined for the system's CAs. Throws when the file cannot be read, is not a regular
 * file (a device such as /dev/zero never ends; a FIFO would block: it is opened without waiting) or is too large.
 */
export function caBundle(tls: TlsSettings): Buffer | undefined {
  if (tls.caCert) return readCaFile(tls.caCert);
  if (tls.caCertBytes !== undefined && tls.caCertBytes.length > 0) return Buffer.from(tls.caCertBytes);
  return undefined;
}

function readCaFile(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error(`the CA certificate ${path} is not a regular file`);
    if (stat.size > MAX_CA_FILE_BYTES) {
      throw new Error(`the CA certificate ${path} is larger than ${MAX_CA_FILE_BYTES} bytes`);
    }
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function customTls(tls: TlsSettings): boolean {
  return Boolean(tls.caCert || (tls.caCertBytes !== undefined && tls.caCertBytes.length > 0) || tls.tlsSkipVerify);
}

/**
 * One HTTP exchange. Plain requests use the global fetch; https with a CA bundle (or without verification) goes
 * through node:https, because fetch only takes custom TLS settings through an undici Agent.
 */
export function send(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | undefined,
  tls: TlsSettings,
  limits: ExchangeLimits = {},
): Promise<RawResponse> {
  const timeoutMs = limits.timeoutMs ?? TIMEOUT_MS;
  const maxBytes = limits.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  if (url.startsWith('https:') && customTls(tls)) {
    return httpsSend(method, url, headers, body, caBundle(tls), !tls.tlsSkipVerify, timeoutMs, maxBytes);
  }
  // The signal also ends the reading of the body.
  return fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) }).then(async (r) => ({
    status: r.status,
    text: await readCapped(r, maxBytes),
  }));
}

async function readCapped(r: Response, maxBytes: number): Promise<string> {
  if (!r.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of r.body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      await r.body.cancel().catch(() => undefined);
      throw new AnswerTooLargeError(maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function httpsSend(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | undefined,
  ca: Buffer | undefined,
  rejectUnauthorized: boolean,
  timeoutMs: number,
  maxBytes: number,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // Why this side ended the exchange: the response's own error ("aborted") may come first.
    let ended: Error | undefined;
    const end = (err: Error): void => {
      ended ??= err;
      req.destroy(err);
    };
    const fail = (err: Error): void => reject(ended ?? err);
    const req = https.request(url, { method, headers, ca, rejectUnauthorized, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) end(new AnswerTooLargeError(maxBytes));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    // `timeout` fires only after that long with no byte either way; this bounds the whole exchange.
    const deadline = setTimeout(() => end(new Error('request timed out')), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => end(new Error('request timed out')));
    req.on('error', fail);
    req.end(body);
  });
}

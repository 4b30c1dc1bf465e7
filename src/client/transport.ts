import { readFileSync } from 'node:fs';
import https from 'node:https';

const TIMEOUT_MS = 60_000;

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

/** The CA bundle of `tls`, or undefined for the system's CAs. Throws when the file cannot be read. */
export function caBundle(tls: TlsSettings): Buffer | undefined {
  if (tls.caCert) return readFileSync(tls.caCert);
  if (tls.caCertBytes !== undefined && tls.caCertBytes.length > 0) return Buffer.from(tls.caCertBytes);
  return undefined;
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
): Promise<RawResponse> {
  if (url.startsWith('https:') && customTls(tls)) {
    return httpsSend(method, url, headers, body, caBundle(tls), !tls.tlsSkipVerify);
  }
  return fetch(url, { method, headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) }).then(async (r) => ({
    status: r.status,
    text: await r.text(),
  }));
}

function httpsSend(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | undefined,
  ca: Buffer | undefined,
  rejectUnauthorized: boolean,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca, rejectUnauthorized, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

import { readFileSync } from 'node:fs';
import https from 'node:https';

const TIMEOUT_MS = 60_000;

export interface RawResponse {
  status: number;
  text: string;
}

export interface TlsSettings {
  caCert?: string;
  tlsSkipVerify?: boolean;
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
  if (url.startsWith('https:') && (tls.caCert || tls.tlsSkipVerify)) {
    const ca = tls.caCert ? readFileSync(tls.caCert) : undefined;
    return httpsSend(method, url, headers, body, ca, !tls.tlsSkipVerify);
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

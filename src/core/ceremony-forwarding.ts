import { randomUUID } from 'node:crypto';
import { CofreError, permissionDenied } from './errors.js';
import type { CeremonyCall } from './key-ceremonies.js';

/**
 * sys/generate-root and sys/rekey across the nodes of a PostgreSQL cluster. The attempts live in the leader's
 * memory (as Vault's, on its active node); another node sends each call to the leader's API address
 * (`sys/internal/key-ceremony`) and answers with what the leader answered.
 *
 * The leader's address comes from the store, which the threat model does not trust, and the call carries an
 * unseal key share. So the call and the answer cross the network sealed by the barrier (AES-256-GCM under the
 * keyring only unsealed nodes of this cluster hold), each under a context of its own: a server that is not an
 * unsealed node of this cluster can neither read a share nor forge a call or an answer, TLS or not. A call is
 * refused after CALL_TTL_MS, and an answer must name the call it answers, so neither can be replayed later.
 */
export const FORWARD_PATH = 'sys/internal/key-ceremony';
const CALL_CONTEXT = 'cofre/key-ceremony/call';
const REPLY_CONTEXT = 'cofre/key-ceremony/reply';
/** Long enough for a busy leader, short enough that a captured call is useless soon after. */
const CALL_TTL_MS = 60_000;
const FORWARD_TIMEOUT_MS = 15_000;
/** Every answer is a small JSON object; a server that sends more is not a Cofre leader. */
const REPLY_MAX_BYTES = 64 * 1024;

/** The barrier's encryptValue/decryptValue. */
export interface ValueSealer {
  encryptValue(context: string, value: Uint8Array): Buffer;
  decryptValue(context: string, sealed: Uint8Array): Buffer;
}

interface SealedCall {
  id: string;
  at: number;
  call: Omit<CeremonyCall, 'key'> & { key?: string };
}

type Outcome = { id: string; value: unknown } | { id: string; error: { status: number; message: string } };

const OPS = new Set<string>([
  'root.status',
  'root.start',
  'root.cancel',
  'root.update',
  'rekey.status',
  'rekey.start',
  'rekey.cancel',
  'rekey.update',
  'rekey.verifyStatus',
  'rekey.verify',
  'rekey.restartVerification',
]);

/** Sends one call to the leader at `leaderAddr` and returns its answer, or throws its error with its status. */
export async function forwardCeremonyCall(
  sealer: ValueSealer,
  leaderAddr: string,
  call: CeremonyCall,
): Promise<unknown> {
  const url = leaderUrl(leaderAddr);
  const { id, sealed } = sealCeremonyCall(sealer, call);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sealed }),
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CofreError(502, `the leader at ${url.origin} could not be reached: ${(err as Error).message}`);
  }
  const text = await boundedText(res, url);
  if (res.status !== 200) {
    // The leader's own refusal (it stepped down meanwhile, or is sealed): its status and message carry over.
    const errors = parseJson(text)?.errors;
    const message = Array.isArray(errors) ? errors.join('; ') : `status ${res.status}`;
    throw new CofreError(res.status >= 400 && res.status < 600 ? res.status : 502, `the leader refused: ${message}`);
  }
  const body = parseJson(text);
  if (typeof body?.sealed !== 'string') throw badLeader(url);
  let outcome: Outcome;
  try {
    outcome = JSON.parse(sealer.decryptValue(REPLY_CONTEXT, Buffer.from(body.sealed, 'base64')).toString('utf8'));
  } catch {
    throw badLeader(url);
  }
  if (outcome.id !== id) throw badLeader(url);
  if ('error' in outcome) throw new CofreError(outcome.error.status, outcome.error.message);
  return outcome.value;
}

/** A call as it goes to the leader: sealed, stamped with the time, named by `id` for its answer. */
export function sealCeremonyCall(sealer: ValueSealer, call: CeremonyCall): { id: string; sealed: string } {
  const id = randomUUID();
  const plain: SealedCall = {
    id,
    at: Date.now(),
    call: 'key' in call ? { ...call, key: Buffer.from(call.key).toString('base64') } : call,
  };
  return { id, sealed: sealer.encryptValue(CALL_CONTEXT, Buffer.from(JSON.stringify(plain))).toString('base64') };
}

/**
 * Opens a call another node forwarded; throws 403 for anything this cluster's barrier did not seal, or sealed
 * too long ago.
 */
export function openForwardedCall(sealer: ValueSealer, sealed: string): { id: string; call: CeremonyCall } {
  let plain: SealedCall;
  try {
    plain = JSON.parse(sealer.decryptValue(CALL_CONTEXT, Buffer.from(sealed, 'base64')).toString('utf8'));
  } catch {
    throw permissionDenied('the forwarded call was not sealed by a node of this cluster');
  }
  // Sealed by a node of this cluster, so well formed; checked anyway, as every input is.
  if (typeof plain.id !== 'string' || typeof plain.at !== 'number' || !OPS.has(plain.call?.op)) {
    throw permissionDenied('the forwarded call is not one this server knows');
  }
  if (Math.abs(Date.now() - plain.at) > CALL_TTL_MS) throw permissionDenied('the forwarded call has expired');
  const call = (
    typeof plain.call.key === 'string' ? { ...plain.call, key: Buffer.from(plain.call.key, 'base64') } : plain.call
  ) as CeremonyCall;
  return { id: plain.id, call };
}

/** Seals the leader's answer (or its error, status kept) to the call `id`. */
export async function sealForwardedReply(
  sealer: ValueSealer,
  id: string,
  run: () => Promise<unknown>,
): Promise<string> {
  let outcome: Outcome;
  try {
    outcome = { id, value: (await run()) ?? null };
  } catch (err) {
    if (!(err instanceof CofreError)) throw err;
    outcome = { id, error: { status: err.status, message: err.message } };
  }
  return sealer.encryptValue(REPLY_CONTEXT, Buffer.from(JSON.stringify(outcome))).toString('base64');
}

function leaderUrl(leaderAddr: string): URL {
  let url: URL;
  try {
    url = new URL(`/v1/${FORWARD_PATH}`, leaderAddr);
  } catch {
    throw new CofreError(502, 'the leader has no usable API address in the store');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CofreError(502, 'the leader has no usable API address in the store');
  }
  return url;
}

/** The answer's text, refused past REPLY_MAX_BYTES without reading the rest. */
async function boundedText(res: Response, url: URL): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      // Leaving the loop cancels the rest of the body.
      if (size > REPLY_MAX_BYTES) {
        throw new CofreError(
          502,
          `the server at ${url.origin} sent more than ${REPLY_MAX_BYTES} bytes: not a leader's answer`,
        );
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function badLeader(url: URL): CofreError {
  return new CofreError(502, `the server at ${url.origin} did not answer as this cluster's leader`);
}
